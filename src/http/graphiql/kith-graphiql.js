// kith's GraphiQL page: everything it loads comes from this server.
//
// One fetcher serves queries and mutations over HTTP and subscriptions over
// graphql-ws (/graphql/ws). The socket signs in with the Authorization header
// typed into GraphiQL's headers editor, as HTTP requests do: when that header
// changes, the next operation opens a new socket with the new token.
(function () {
  "use strict";

  var httpUrl = new URL("/graphql", window.location.href).href;
  var wsUrl = httpUrl.replace(/^http/, "ws") + "/ws";

  function authorizationOf(headers) {
    var names = Object.keys(headers || {});
    for (var i = 0; i < names.length; i++) {
      if (names[i].toLowerCase() === "authorization") return String(headers[names[i]]);
    }
    return "";
  }

  // The socket of the current token: { authorization, client, fetcher }.
  var current = null;

  function fetcherFor(authorization) {
    if (current && current.authorization === authorization) return current.fetcher;
    if (current) current.client.dispose();
    var client = graphqlWs.createClient({
      url: wsUrl,
      lazy: true,
      connectionParams: authorization ? { Authorization: authorization } : {},
    });
    current = {
      authorization: authorization,
      client: client,
      fetcher: GraphiQL.createFetcher({
        url: httpUrl,
        wsClient: client,
        enableIncrementalDelivery: false,
      }),
    };
    return current.fetcher;
  }

  function fetcher(params, options) {
    return fetcherFor(authorizationOf(options && options.headers))(params, options);
  }

  // One tab per domain. Each starts with what to do first.
  var tabs = [
    {
      query: [
        "# Sign in. With `kith serve --demo`, alice, bob, carol and dave exist",
        "# (the password is printed at start); or register someone new.",
        "# Copy accessToken into the headers below:",
        '#   { "Authorization": "Bearer <accessToken>" }',
        "# Every other tab, subscriptions included, then runs as that user.",
        "",
        "mutation SignIn {",
        '  login(input: { identifier: "alice", password: "kith-demo-password" }) {',
        "    accessToken",
        "    refreshToken",
        "    accessTokenExpiresAt",
        "    user { id username displayName }",
        "  }",
        "}",
        "",
        "mutation Register {",
        '  register(input: { username: "ada", password: "correct horse battery" }) {',
        "    accessToken",
        "    user { id username }",
        "  }",
        "}",
        "",
        "# Or by SMS code. With the default KITH_SMS_SENDER=log the code is",
        "# written to the server's log instead of sent.",
        "mutation SmsCode {",
        '  requestSmsCode(input: { phone: "+14155550123" }) { phone expiresAt }',
        "}",
        "",
        "mutation SignInWithSms {",
        '  loginWithSms(input: { phone: "+14155550123", code: "000000" }) {',
        "    accessToken",
        "    user { id username phone }",
        "  }",
        "}",
        "",
        "query Me {",
        "  me {",
        "    id username displayName",
        "    photos { id position placeholder url(size: 640) }",
        "    sessions { id current method userAgent createdAt }",
        "    identities { method subject linkedAt }",
        "  }",
        "}",
        "",
      ].join("\n"),
    },
    {
      query: [
        "# Friends: who you know, who asked, and people you may know.",
        "",
        "query Friends {",
        "  me {",
        "    friendsCount",
        "    friends(first: 10) { nodes { id username displayName presence } }",
        "    incomingFriendRequests(first: 10) { nodes { id message from { id username } } }",
        "  }",
        "  friendSuggestions(first: 5) { user { id username } mutualFriendsCount }",
        "}",
        "",
        "mutation Befriend($userId: ID!) {",
        '  sendFriendRequest(input: { userId: $userId, message: "Hi!" }) { id status }',
        "}",
        "",
        "mutation Accept($requestId: ID!) {",
        "  acceptFriendRequest(id: $requestId) { id status from { username } }",
        "}",
        "",
      ].join("\n"),
      variables: '{ "userId": "", "requestId": "" }',
    },
    {
      query: [
        "# Groups: find one, join it, or start your own.",
        "",
        "query Groups {",
        '  searchGroups(query: "", first: 10) {',
        "    nodes { id name description visibility joinPolicy memberCount viewerRole }",
        "  }",
        "  me { groups(first: 10) { nodes { id name viewerRole } } }",
        "}",
        "",
        "mutation CreateGroup {",
        "  createGroup(input: {",
        '    name: "Climbing friends"',
        '    description: "Saturday mornings at the wall"',
        "    visibility: PUBLIC",
        "    joinPolicy: OPEN",
        "  }) { id name conversation { id } }",
        "}",
        "",
        "mutation Join($groupId: ID!) {",
        "  requestToJoinGroup(groupId: $groupId) { joined joinRequest { id } group { memberCount } }",
        "}",
        "",
      ].join("\n"),
      variables: '{ "groupId": "" }',
    },
    {
      query: [
        "# Chat: run Conversations, put an id in the variables, start",
        "# MessageAdded (it stays open), then run Send, here or from another",
        "# client: the message appears in MessageAdded's results.",
        "",
        "query Conversations {",
        "  conversations(first: 10) {",
        "    nodes {",
        "      id kind unreadCount lastSeq",
        "      participants { username }",
        "      lastMessage { seq body sender { username } createdAt }",
        "    }",
        "  }",
        "}",
        "",
        "subscription MessageAdded($conversationId: ID) {",
        "  messageAdded(conversationId: $conversationId) {",
        "    seq body sender { username } createdAt",
        "  }",
        "}",
        "",
        "mutation Send($conversationId: ID!) {",
        "  sendMessage(input: {",
        "    conversationId: $conversationId",
        '    body: "Hello from GraphiQL"',
        '    clientMessageId: "graphiql-1"',
        "  }) { id seq body }",
        "}",
        "",
        "query History($conversationId: ID!) {",
        "  conversation(id: $conversationId) {",
        "    messages(last: 20) { nodes { seq body sender { username } } }",
        "  }",
        "}",
        "",
      ].join("\n"),
      variables: '{ "conversationId": "" }',
    },
    {
      query: [
        "# Discovery: people near you who match your preferences; like them",
        "# back and it is a match, with a conversation of its own.",
        "",
        "query Recommendations {",
        "  me { discoveryPreferences { minAge maxAge genders maxDistanceKm discoverable } }",
        "  recommendations(first: 10) {",
        "    edges {",
        "      distanceKm commonInterests mutualFriendsCount superLikedViewer",
        "      node { id username displayName age interests photos { url(size: 160) } }",
        "    }",
        "  }",
        "  matches(first: 10) { nodes { id user { username } conversation { id } } }",
        "}",
        "",
        "mutation Like($userId: ID!) {",
        "  like(userId: $userId) { match { id conversation { id } } }",
        "}",
        "",
      ].join("\n"),
      variables: '{ "userId": "" }',
    },
  ];

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultTabs: tabs,
      defaultEditorToolsVisibility: true,
    })
  );
})();
