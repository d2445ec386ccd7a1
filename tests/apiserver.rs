//! Tests of the in-process API server (tests/support/apiserver) through kube's own clients.

mod support;

use support::apiserver::ApiServer;

#[tokio::test]
async fn starts() {
    let server = ApiServer::start().await;
    let _client = server.client();
}
