//! The local server answers exactly the routes the OpenAPI document describes, and the routes
//! marked `x-local-only` are exactly its test-clock routes.

use std::collections::BTreeSet;

use serde_json::Value;

fn openapi() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../api/openapi.json");
    let text = std::fs::read_to_string(path).expect("api/openapi.json exists");
    serde_json::from_str(&text).expect("api/openapi.json is JSON")
}

/// (METHOD, path template) of every operation in the document; with `local_only`, only those
/// marked `x-local-only: true`.
fn operations(document: &Value, local_only: bool) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let is_method = ["get", "put", "post", "delete", "patch", "head", "options"]
                .contains(&method.as_str());
            let marked = operation.get("x-local-only").and_then(Value::as_bool) == Some(true);
            if is_method && (!local_only || marked) {
                found.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    found
}

fn as_set(routes: impl IntoIterator<Item = coins_http::Route>) -> BTreeSet<(String, String)> {
    routes
        .into_iter()
        .map(|route| (route.method.to_owned(), route.path.to_owned()))
        .collect()
}

#[test]
fn the_route_table_is_the_openapi_documents() {
    let documented = operations(&openapi(), false);
    let served = as_set(local_server::routes());
    assert_eq!(
        served,
        documented,
        "\nserved but not documented: {:?}\ndocumented but not served: {:?}",
        served.difference(&documented).collect::<Vec<_>>(),
        documented.difference(&served).collect::<Vec<_>>()
    );
}

#[test]
fn only_the_dev_routes_are_local_only() {
    let local_only = operations(&openapi(), true);
    assert_eq!(
        local_only,
        as_set(
            (local_server::dev_clock::ROUTES.iter())
                .chain(local_server::dev_payments::ROUTES)
                .copied()
        )
    );
}

#[test]
fn no_route_is_served_by_two_functions() {
    let mounts = local_server::mounts();
    let unique: BTreeSet<_> = mounts.iter().map(|(route, _)| route.key()).collect();
    assert_eq!(unique.len(), mounts.len());
}

/// The package and gift ids a request may name are the document's enums, so a fuzzer drawing
/// from the document never sends an id the rules data does not have (and a new one is noticed).
#[test]
fn the_documents_enums_are_the_rules_data() {
    let document = openapi();
    let schemas = &document["components"]["schemas"];
    let enumerated = |schema: &Value| -> BTreeSet<String> {
        schema["enum"]
            .as_array()
            .expect("an enum")
            .iter()
            .map(|id| id.as_str().expect("a string id").to_owned())
            .collect()
    };
    let packages = coins_rules::PriceBook::embedded()
        .packages()
        .iter()
        .map(|package| package.package_id.as_str().to_owned())
        .collect();
    let gifts = coins_rules::GiftCatalog::embedded()
        .gifts()
        .iter()
        .map(|gift| gift.gift_id.as_str().to_owned())
        .collect();
    assert_eq!(
        enumerated(&schemas["QuoteRequest"]["properties"]["package_id"]),
        packages
    );
    assert_eq!(
        enumerated(&schemas["GiftRequest"]["properties"]["gift_id"]),
        gifts
    );
}
