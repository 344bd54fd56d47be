//! Every reply the end-to-end tests get is checked against `api/openapi.json`: its status is one
//! the operation documents, its media type one that status documents, and its body valid against
//! that schema (JSON Schema 2020-12, as OpenAPI 3.1 says). So the document is tested by every
//! test, not only by the fuzzer, and a field renamed in a handler fails a test at once.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use jsonschema::Validator;
use serde_json::Value;

static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../api/openapi.json");
    let text = std::fs::read_to_string(path).expect("api/openapi.json exists");
    serde_json::from_str(&text).expect("api/openapi.json is JSON")
});

/// One validator per response schema, compiled on first use (JSON pointer → validator).
static VALIDATORS: LazyLock<Mutex<HashMap<String, &'static Validator>>> =
    LazyLock::new(Default::default);

/// Whether `body`, answered with `status` and `content_type` to `method path`, is what the
/// document says; the reason if not. Paths and methods the document does not have (the tests of
/// 404 and 405) have nothing to conform to.
pub fn check(
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> Result<(), String> {
    let path = path.split('?').next().unwrap_or(path);
    let Some(template) = template_of(path) else {
        return Ok(());
    };
    let method = method.to_ascii_lowercase();
    let Some(operation) = DOCUMENT["paths"][template.as_str()].get(&method) else {
        return Ok(());
    };
    let status_key = status.to_string();
    let Some(response) = operation["responses"].get(&status_key) else {
        return Err(format!(
            "{status} is not a documented response of {method} {template}"
        ));
    };
    let response = resolve(response);
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return if body.is_empty() {
            Ok(())
        } else {
            Err(format!("{status} of {method} {template} documents no body"))
        };
    };
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some(media) = content.get(&media_type) else {
        return Err(format!(
            "{status} of {method} {template} is not documented as {media_type:?}"
        ));
    };
    if media.get("schema").is_none() {
        return Ok(());
    }
    let instance: Value =
        serde_json::from_slice(body).map_err(|error| format!("not JSON: {error}"))?;
    // A shared response (`$ref: #/components/responses/…`) is validated where it lives.
    let response_pointer = match operation["responses"][&status_key]
        .get("$ref")
        .and_then(Value::as_str)
    {
        Some(shared) => shared.to_owned(),
        None => format!(
            "#/paths/{}/{method}/responses/{status_key}",
            escape(&template)
        ),
    };
    let pointer = format!("{response_pointer}/content/{}/schema", escape(&media_type));
    let validator = validator(&pointer)?;
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{status} of {method} {template} does not match the document: {}",
            errors.join("; ")
        ))
    }
}

/// The document's path template that `path` is an instance of; the most specific one if several
/// are (`/v1/purchases/app-store` before `/v1/purchases/{purchase_id}`).
fn template_of(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    DOCUMENT["paths"]
        .as_object()?
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            let fits = parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(part, segment)| {
                    part == segment || (part.starts_with('{') && !segment.is_empty())
                });
            fits.then(|| {
                (
                    parts.iter().filter(|p| p.starts_with('{')).count(),
                    template,
                )
            })
        })
        .min()
        .map(|(_, template)| template.clone())
}

/// A response given by reference, followed.
fn resolve(response: &Value) -> &Value {
    match response.get("$ref").and_then(Value::as_str) {
        Some(shared) => DOCUMENT
            .pointer(shared.trim_start_matches('#'))
            .unwrap_or(response),
        None => response,
    }
}

/// A JSON pointer token (RFC 6901) inside a URI fragment: `~` and `/` escaped, and the braces
/// of a path template percent-encoded (a fragment may not hold them).
fn escape(token: &str) -> String {
    token
        .replace('~', "~0")
        .replace('/', "~1")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

fn validator(pointer: &str) -> Result<&'static Validator, String> {
    let mut validators = VALIDATORS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(validator) = validators.get(pointer) {
        return Ok(validator);
    }
    // The whole document as the root schema, pointing at one response schema: its own `$ref`s
    // to `#/components/schemas/…` then resolve in place. The other top-level members
    // (`openapi`, `paths`, …) are not JSON Schema keywords and are ignored.
    let mut root = DOCUMENT.clone();
    root["$schema"] = "https://json-schema.org/draft/2020-12/schema".into();
    root["$ref"] = pointer.into();
    let validator = jsonschema::validator_for(&root)
        .map_err(|error| format!("the schema at {pointer} does not compile: {error}"))?;
    let validator: &'static Validator = Box::leak(Box::new(validator));
    validators.insert(pointer.to_owned(), validator);
    Ok(validator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_as_documented_passes_and_one_that_is_not_fails() {
        let wallet = br#"{"user_id":"alice","balance":0,"lots":[]}"#;
        let checked = check("GET", "/v1/wallet", 200, "application/json", wallet);
        // Whatever the wallet's required fields are, a body missing most of them fails.
        let broken = check(
            "GET",
            "/v1/wallet",
            200,
            "application/json",
            br#"{"balance":"0"}"#,
        );
        assert!(broken.is_err(), "{checked:?}");
        let problem = br#"{"type":"urn:coins:problem:unauthenticated","title":"Unauthenticated","status":401,"detail":"no token","code":"unauthenticated"}"#;
        check(
            "GET",
            "/v1/wallet",
            401,
            "application/problem+json",
            problem,
        )
        .unwrap();
        assert!(check("GET", "/v1/wallet", 418, "application/json", b"{}").is_err());
    }

    #[test]
    fn the_most_specific_template_is_chosen() {
        assert_eq!(
            template_of("/v1/purchases/app-store").as_deref(),
            Some("/v1/purchases/app-store")
        );
        assert_eq!(
            template_of("/v1/purchases/pur_1").as_deref(),
            Some("/v1/purchases/{purchase_id}")
        );
        assert_eq!(template_of("/v1/nothing"), None);
    }
}
