//! The `stores` Lambda function: wiring only (see the library for the handlers).

coins_runtime::http_function!(stores::handle, stores::load);
