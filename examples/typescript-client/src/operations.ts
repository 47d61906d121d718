// The operations this example sends, written with the client preset's
// `graphql()`: `npm run codegen` reads them and types each one (its result
// and its variables) against kith's schema, so a field that does not exist,
// or a variable of the wrong type, fails `npm run build`.
import { graphql } from './gql/index.js';

export const Register = graphql(`
  mutation Register($input: RegisterInput!) {
    register(input: $input) {
      accessToken
      accessTokenExpiresAt
      user {
        id
        username
      }
    }
  }
`);

export const SendFriendRequest = graphql(`
  mutation SendFriendRequest($userId: ID!) {
    sendFriendRequest(input: { userId: $userId }) {
      id
      status
    }
  }
`);

export const AcceptFriendRequest = graphql(`
  mutation AcceptFriendRequest($id: ID!) {
    acceptFriendRequest(id: $id) {
      id
      status
    }
  }
`);

/** Opens (or finds) the direct conversation with a user one may message. */
export const DirectConversation = graphql(`
  mutation DirectConversation($userId: ID!) {
    directConversation(userId: $userId) {
      id
      kind
      lastSeq
      participants {
        id
        username
      }
    }
  }
`);

/** The viewer's conversations, a connection: most recent activity first. */
export const MyConversations = graphql(`
  query MyConversations($first: Int, $after: String) {
    conversations(first: $first, after: $after) {
      edges {
        cursor
        node {
          id
          kind
          lastSeq
          unreadCount
          participants {
            id
            username
          }
          lastMessage {
            id
            seq
            body
          }
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const SendMessage = graphql(`
  mutation SendMessage($input: SendMessageInput!) {
    sendMessage(input: $input) {
      id
      seq
      body
    }
  }
`);

/**
 * New messages of one conversation. With `sinceSeq`, first every stored
 * message after it, then live ones: in seq order, no gap, no duplicate.
 */
export const MessageAdded = graphql(`
  subscription MessageAdded($conversationId: ID!, $sinceSeq: Int) {
    messageAdded(conversationId: $conversationId, sinceSeq: $sinceSeq) {
      id
      seq
      body
      createdAt
      sender {
        id
        username
      }
    }
  }
`);
