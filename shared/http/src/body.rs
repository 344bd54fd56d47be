//! Parsing at the edge: the request body into a DTO, headers and query parameters into values.
//!
//! Bodies are capped at [`MAX_BODY_BYTES`] (413 `payload_too_large`: every body of API.md is a few
//! hundred bytes, so a bigger one is a mistake or an attack and is refused before it is parsed).
//! Everything else a client gets wrong is a 400 `invalid_request` whose `detail` says what, and
//! no handler writes anything before its input has parsed.

use lambda_http::http::header;
use lambda_http::{Request, RequestExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Problem};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The idempotency header of the mutating routes.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Longest `Idempotency-Key` accepted, in characters.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The raw body bytes, refused above [`MAX_BODY_BYTES`].
pub fn raw_body(req: &Request) -> Result<&[u8], ApiError> {
    let body = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            Problem::PayloadTooLarge,
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    Ok(body)
}

/// Parses the JSON body into `T`. Wrong types, unknown enum values, negative or overflowing
/// integers and missing fields are all rejected by `T`'s serde derive (a whole number written
/// `2.0` is the integer 2, as in JSON Schema); unknown fields are allowed (API.md: "Extra fields
/// are allowed").
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::invalid("the body must be application/json"));
        }
    }
    let body = raw_body(req)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("the request needs a JSON body"));
    }
    // serde reads a struct from an array too (`[null]` as `{"daily_coins": null}`); every body
    // of the API is an object, and the document says so.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid("the body must be a JSON object"));
    }
    let invalid = |error: serde_json::Error| {
        ApiError::invalid(match error.classify() {
            serde_json::error::Category::Data => format!("invalid body: {error}"),
            _ => format!("malformed JSON: {error}"),
        })
    };
    match serde_json::from_slice(body) {
        Ok(parsed) => Ok(parsed),
        // JSON has one number type: `2.0` is the integer 2 to JSON Schema (and so to the
        // OpenAPI document), while serde's integers refuse it. Only then is the body read
        // twice, so the usual request pays nothing for this.
        Err(error) if error.to_string().contains("invalid type: floating point") => {
            let mut value: serde_json::Value = serde_json::from_slice(body).map_err(invalid)?;
            whole_numbers_as_integers(&mut value);
            serde_json::from_value(value).map_err(invalid)
        }
        Err(error) => Err(invalid(error)),
    }
}

/// Rewrites every number with no fractional part that fits an integer as that integer.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(number) if number.is_f64() => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            // Below 2^53 a float is exact, so the integer is the one the client wrote.
            if float.fract() == 0.0 && float.abs() < 9_007_199_254_740_992.0 {
                *value = Value::from(float as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

/// The client's `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(value: &str) -> Result<IdempotencyKey, ApiError> {
        let ok = (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(IdempotencyKey(value.to_owned()))
        } else {
            Err(ApiError::invalid(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
            )))
        }
    }

    /// The required header of the route: absent or invalid is 400 `invalid_request`.
    pub fn from_request(req: &Request) -> Result<IdempotencyKey, ApiError> {
        let mut values = req.headers().get_all(IDEMPOTENCY_KEY).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(ApiError::invalid(
                "exactly one Idempotency-Key header is required on this route",
            ));
        };
        let value = value
            .to_str()
            .map_err(|_| ApiError::invalid("Idempotency-Key must be visible ASCII"))?;
        IdempotencyKey::parse(value)
    }

    /// The header where a route takes it optionally: absent is `None`, given it must be valid;
    /// as the ledger's key.
    pub fn optional(req: &Request) -> Result<Option<coins_ids::IdempotencyKey>, ApiError> {
        if req.headers().contains_key(IDEMPOTENCY_KEY) {
            IdempotencyKey::from_request(req)?.into_ledger().map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The ledger's key (which also refuses `#`, its key separator, and anything over its own
    /// length limit) for the idempotency record.
    pub fn into_ledger(self) -> Result<coins_ids::IdempotencyKey, ApiError> {
        coins_ids::IdempotencyKey::new(self.0)
            .map_err(|error| ApiError::invalid(format!("Idempotency-Key: {error}")))
    }
}

/// A query parameter, if given once. Given twice is ambiguous, so it is refused.
pub fn query_param(req: &Request, name: &str) -> Result<Option<String>, ApiError> {
    let params = req.query_string_parameters();
    match params.all(name) {
        None => Ok(None),
        Some(values) if values.len() == 1 => Ok(Some(values[0].to_owned())),
        Some(_) => Err(ApiError::invalid(format!(
            "query parameter `{name}` is given more than once"
        ))),
    }
}

/// A page of a list: `?limit=` (1 to `max`, `default` when absent) and `?cursor=` (opaque, the
/// previous page's `next_cursor`; absent or empty is the first page).
pub fn page(req: &Request, default: u32, max: u32) -> Result<(u32, Option<String>), ApiError> {
    let limit = match query_param(req, "limit")? {
        None => default,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=max).contains(limit))
            .ok_or_else(|| {
                ApiError::invalid(format!("limit must be a whole number from 1 to {max}"))
            })?,
    };
    let cursor = query_param(req, "cursor")?;
    if cursor.as_deref() == Some("") {
        return Err(ApiError::invalid(
            "cursor is the next_cursor of a previous page; leave it out for the first page",
        ));
    }
    Ok((limit, cursor))
}

/// A path parameter of the route template (API Gateway's `pathParameters`).
pub fn path_param(req: &Request, name: &str) -> Result<String, ApiError> {
    req.path_parameters()
        .first(name)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::new(
                Problem::NotFound,
                format!("missing path parameter `{name}`"),
            )
        })
}

/// For an optional field that may be absent but never `null` (the document says a string or a
/// number): use as `#[serde(default, deserialize_with = "coins_http::body::not_null")]`.
pub fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    // Called only when the field is present, so `null` meets `T` and is refused.
    T::deserialize(deserializer).map(Some)
}

/// For a field that is required but may be `null` (`{"daily_coins": null}` removes a limit):
/// use as `#[serde(default, deserialize_with = "coins_http::body::nullable")]` on an
/// `Option<Option<T>>`. Absent stays `None`; `null` becomes `Some(None)`, so forgetting the
/// field is never mistaken for asking for "nothing".
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Body;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Channel {
        Web,
        Ios,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Dto {
        channel: Channel,
        quantity: u32,
    }

    fn request(body: &str) -> Request {
        let mut req = Request::new(Body::from(body.to_owned()));
        req.headers_mut()
            .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        req
    }

    fn detail(error: ApiError) -> String {
        assert_eq!(error.code(), "invalid_request", "{error:?}");
        error.to_string()
    }

    #[test]
    fn a_valid_body_parses_and_extra_fields_are_allowed() {
        let dto: Dto = json_body(&request(r#"{"channel":"web","quantity":3,"note":"x"}"#)).unwrap();
        assert_eq!(
            dto,
            Dto {
                channel: Channel::Web,
                quantity: 3
            }
        );
    }

    #[test]
    fn malformed_json_is_invalid_request() {
        let error = json_body::<Dto>(&request(r#"{"channel":"web","#)).unwrap_err();
        assert!(detail(error).starts_with("malformed JSON"));
    }

    #[test]
    fn an_unknown_enum_value_is_invalid_request_naming_it() {
        let error = json_body::<Dto>(&request(r#"{"channel":"pigeon","quantity":1}"#)).unwrap_err();
        assert!(detail(error).contains("pigeon"));
    }

    #[test]
    fn wrong_types_negative_and_overflowing_numbers_are_invalid_request() {
        for body in [
            r#"{"channel":"web","quantity":"3"}"#,
            r#"{"channel":"web","quantity":-1}"#,
            r#"{"channel":"web","quantity":4294967296}"#,
            r#"{"channel":"web","quantity":1.5}"#,
            r#"{"channel":"web"}"#,
        ] {
            let error = json_body::<Dto>(&request(body)).unwrap_err();
            assert!(detail(error).starts_with("invalid body"), "{body}");
        }
        // A struct is not read from an array, as serde alone would.
        for body in [r#"[]"#, r#"["web", 3]"#, "  [null]", "3"] {
            let error = json_body::<Dto>(&request(body)).unwrap_err();
            assert_eq!(detail(error), "the body must be a JSON object", "{body}");
        }
    }

    #[test]
    fn a_whole_number_written_as_a_float_is_that_integer() {
        let dto: Dto = json_body(&request(r#"{"channel":"ios","quantity":3.0}"#)).unwrap();
        assert_eq!(dto.quantity, 3);
        let limit: Limit = json_body(&request(r#"{"daily_coins": 1e3}"#)).unwrap();
        assert_eq!(limit.daily_coins, Some(Some(1000)));
        let error = json_body::<Dto>(&request(r#"{"channel":"web","quantity":3.5}"#)).unwrap_err();
        assert!(detail(error).starts_with("invalid body"));
    }

    #[test]
    fn an_empty_body_or_another_media_type_is_invalid_request() {
        detail(json_body::<Dto>(&request("")).unwrap_err());
        let mut req = request(r#"{"channel":"web","quantity":3}"#);
        req.headers_mut()
            .insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        detail(json_body::<Dto>(&req).unwrap_err());
    }

    #[test]
    fn a_body_over_the_limit_is_413() {
        let big = format!(
            r#"{{"channel":"web","quantity":1,"pad":"{}"}}"#,
            "x".repeat(MAX_BODY_BYTES)
        );
        let error = json_body::<Dto>(&request(&big)).unwrap_err();
        assert_eq!(error.status().as_u16(), 413);
    }

    #[derive(Debug, Deserialize)]
    struct Limit {
        #[serde(default, deserialize_with = "nullable")]
        daily_coins: Option<Option<u64>>,
    }

    #[test]
    fn a_nullable_field_tells_null_from_absent() {
        let parse = |body| json_body::<Limit>(&request(body)).unwrap().daily_coins;
        assert_eq!(parse(r#"{"daily_coins": 500}"#), Some(Some(500)));
        assert_eq!(parse(r#"{"daily_coins": null}"#), Some(None));
        assert_eq!(parse(r#"{}"#), None);
    }

    #[derive(Debug, Deserialize)]
    struct Optional {
        #[serde(default, deserialize_with = "not_null")]
        coins: Option<u64>,
    }

    #[test]
    fn an_optional_field_may_be_absent_but_not_null() {
        let parse = |body| json_body::<Optional>(&request(body)).map(|o| o.coins);
        assert_eq!(parse(r#"{"coins": 5}"#).unwrap(), Some(5));
        assert_eq!(parse(r#"{}"#).unwrap(), None);
        detail(parse(r#"{"coins": null}"#).unwrap_err());
    }

    #[test]
    fn idempotency_keys_are_visible_ascii_up_to_255() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("tab\t").is_err());
    }

    #[test]
    fn a_missing_idempotency_key_header_is_invalid_request() {
        let req = request("{}");
        detail(IdempotencyKey::from_request(&req).unwrap_err());
        let mut req = request("{}");
        req.headers_mut()
            .insert(IDEMPOTENCY_KEY, "order-42".parse().unwrap());
        assert_eq!(
            IdempotencyKey::from_request(&req).unwrap().as_str(),
            "order-42"
        );
    }
}
