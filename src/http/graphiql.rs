//! The GraphiQL playground, pointed at this server's HTTP and WebSocket endpoints.

use async_graphql::http::GraphiQLSource;
use axum::response::Html;

pub async fn page() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("kith GraphiQL")
            .finish(),
    )
}
