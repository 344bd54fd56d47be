//! End-to-end tests through the local server on DynamoDB Local: every route and every error
//! code of API.md, over real HTTP. Each test has its own server, table and users.
//!
//! `DYNAMODB_ENDPOINT` must point at DynamoDB Local (the test command starts one); without it
//! every test here fails with a message saying so.

mod access;
mod concurrency;
mod conflicts;
mod history;
mod invalid_requests;
mod limits;
mod main_flow;
mod price_lists;
mod refunds;
mod rejections;
mod webhooks;
