//! The product's main journey, on DynamoDB.

use e2e_tests::LocalServer;
use e2e_tests::scenarios::main_flow;

#[test]
fn a_fan_buys_coins_gifts_a_creator_and_refunds_an_unspent_purchase() {
    main_flow(&LocalServer::new("main-flow"));
}
