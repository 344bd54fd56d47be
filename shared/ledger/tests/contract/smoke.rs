//! Proves the harness itself against DynamoDB Local with the raw SDK: a table is created, a
//! conditional put succeeds, and the same put then fails its condition.

use aws_sdk_dynamodb::types::AttributeValue;

use crate::harness::dynamo_store;

#[tokio::test]
async fn dynamodb_local_creates_a_table_and_enforces_a_condition() {
    let store = dynamo_store().await;
    let put = || {
        store
            .client()
            .put_item()
            .table_name(store.table_name())
            .item("pk", AttributeValue::S("SMOKE".into()))
            .item("sk", AttributeValue::S("SMOKE".into()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
    };
    put().await.expect("the first conditional put succeeds");
    let second = put().await.expect_err("the same put fails its condition");
    assert!(
        second
            .as_service_error()
            .is_some_and(|e| e.is_conditional_check_failed_exception()),
        "{second:?}"
    );
    crate::harness::drop_table(&store).await;
}
