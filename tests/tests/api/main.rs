//! End-to-end tests through the local server: every route and every error code of API.md, over
//! real HTTP, each test with its own server and users. They run on DynamoDB Local (a fresh table
//! each), and again on the in-memory store with `E2E_STORAGE=memory`; the test command runs both.
//!
//! On DynamoDB, `DYNAMODB_ENDPOINT` must point at DynamoDB Local (the test command starts one);
//! without it every test here fails with a message saying so.

mod access;
mod concurrency;
mod conflicts;
mod creators;
mod disputes;
mod history;
mod invalid_requests;
mod limits;
mod main_flow;
mod price_lists;
mod purchases;
mod refunds;
mod rejections;
mod stores;
mod webhooks;
