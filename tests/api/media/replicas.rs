//! Media across replicas: a photo uploaded through one replica, into the S3
//! bucket they share, is listed and served by the other, under the same
//! signed URL (the signing secret is the deployment's, in the database).

use serde_json::json;

use super::{jpeg, store::s3_bucket, upload_photo};
use crate::common;

#[tokio::test]
async fn a_photo_uploaded_through_one_replica_is_served_by_the_other() {
    let Some(s3) = s3_bucket().await else {
        return;
    };
    let endpoint = s3.endpoint.clone().expect("the test endpoint");
    let replicas = common::spawn_replicas(2, |command| {
        command
            .env("KITH_MEDIA_STORE", "s3")
            .env("KITH_S3_ENDPOINT", &endpoint)
            .env("KITH_S3_BUCKET", &s3.bucket)
            .env("KITH_S3_ACCESS_KEY_ID", "testing")
            .env("KITH_S3_SECRET_ACCESS_KEY", "testing");
    })
    .await;
    let Some(replicas) = replicas else {
        common::skipped("replicas need KITH_TEST_REDIS_URL");
        return;
    };
    let (a, b) = (&replicas[0], &replicas[1]);
    let ann = a.register("ann_replicated").await;
    let upload = jpeg(300, 200);
    let answer = upload_photo(a, ann.token(), &upload, None).await;
    let photo = &answer["data"]["uploadPhoto"];
    assert!(answer["errors"].is_null(), "{answer}");
    let listed = b
        .data("{ me { photos { id url } } }", json!({}), ann.token())
        .await;
    assert_eq!(listed["me"]["photos"][0]["id"], photo["id"]);
    // The same URL from either replica (expiry steps are the deployment's).
    assert_eq!(listed["me"]["photos"][0]["url"], photo["url"]);
    for replica in [a, b] {
        let url = photo["url"].as_str().unwrap();
        let response = replica.client.get(replica.url(url)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        let bytes = response.bytes().await.unwrap();
        assert_eq!(bytes.len() as i64, photo["bytes"].as_i64().unwrap());
    }
}
