//! Reads the SAM template and the OpenAPI document into comparable shapes (routes with their
//! authorization, the table's properties), so tests can hold the deployment to the contract.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};
use serde_norway::Value as Yaml;

/// Who may call a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No JWT (the payment webhook: it is signed instead).
    Public,
    /// A verified JWT carrying every one of these scopes (none for ordinary routes).
    Jwt { scopes: Vec<String> },
}

/// Routes keyed by `(METHOD, path)`, paths in API Gateway form (`/v1/purchases/{purchase_id}/refund`).
pub type Routes = BTreeMap<(String, String), Access>;

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("template is not YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("document is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Shape(String),
}

/// The repository root (this crate lives in `infra/check`), or `INFRA_CHECK_ROOT` when set: the
/// same checks on another checkout's documents (an older template, to see a check fail on it).
pub fn repo_root() -> PathBuf {
    std::env::var_os("INFRA_CHECK_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// Reads a file relative to the repository root.
pub fn read(relative: &str) -> Result<String, CheckError> {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).map_err(|source| CheckError::Read { path, source })
}

/// Parses a CloudFormation/SAM template into JSON, turning short-form tags into their long form
/// (`!Ref X` → `{"Ref": "X"}`, `!GetAtt A.B` → `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` →
/// `{"Fn::Sub": s}`), as CloudFormation itself reads them.
pub fn parse_template(template: &str) -> Result<Json, CheckError> {
    let yaml: Yaml = serde_norway::from_str(template)?;
    yaml_to_json(yaml)
}

fn yaml_to_json(yaml: Yaml) -> Result<Json, CheckError> {
    Ok(match yaml {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(b),
        Yaml::Number(n) => serde_json::to_value(n)?,
        Yaml::String(s) => Json::String(s),
        Yaml::Sequence(items) => Json::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(mapping) => {
            let mut object = Map::new();
            for (key, value) in mapping {
                let key = match key {
                    Yaml::String(s) => s,
                    other => {
                        return Err(CheckError::Shape(format!(
                            "non-string mapping key {other:?}"
                        )));
                    }
                };
                object.insert(key, yaml_to_json(value)?);
            }
            Json::Object(object)
        }
        Yaml::Tagged(tagged) => {
            let name = tagged.tag.to_string();
            let name = name.trim_start_matches('!');
            let value = yaml_to_json(tagged.value)?;
            let (key, value) = match (name, value) {
                ("Ref", value) => ("Ref".to_owned(), value),
                ("GetAtt", Json::String(dotted)) => {
                    let (resource, attribute) = dotted.split_once('.').ok_or_else(|| {
                        CheckError::Shape(format!("!GetAtt {dotted} names no attribute"))
                    })?;
                    (
                        "Fn::GetAtt".to_owned(),
                        Json::Array(vec![resource.into(), attribute.into()]),
                    )
                }
                (other, value) => (format!("Fn::{other}"), value),
            };
            Json::Object(Map::from_iter([(key, value)]))
        }
    })
}

fn shape(what: impl Into<String>) -> CheckError {
    CheckError::Shape(what.into())
}

/// The resources of a template, by logical id.
pub fn resources(template: &Json) -> Result<&Map<String, Json>, CheckError> {
    template
        .get("Resources")
        .and_then(Json::as_object)
        .ok_or_else(|| shape("template has no Resources"))
}

/// The logical ids and properties of every resource of `resource_type`.
pub fn resources_of_type<'a>(
    template: &'a Json,
    resource_type: &str,
) -> Result<Vec<(&'a str, &'a Json)>, CheckError> {
    Ok(resources(template)?
        .iter()
        .filter(|(_, resource)| resource.get("Type").and_then(Json::as_str) == Some(resource_type))
        .map(|(id, resource)| (id.as_str(), resource))
        .collect())
}

/// Every HTTP API route the template's functions subscribe to, with its authorization.
pub fn template_routes(template: &Json) -> Result<Routes, CheckError> {
    let mut routes = Routes::new();
    for (id, function) in resources_of_type(template, "AWS::Serverless::Function")? {
        let Some(events) = function
            .pointer("/Properties/Events")
            .and_then(Json::as_object)
        else {
            continue;
        };
        for (event_id, event) in events {
            if event.get("Type").and_then(Json::as_str) != Some("HttpApi") {
                continue;
            }
            let properties = event
                .get("Properties")
                .ok_or_else(|| shape(format!("{id}.{event_id} has no Properties")))?;
            let text = |field: &str| {
                properties
                    .get(field)
                    .and_then(Json::as_str)
                    .ok_or_else(|| shape(format!("{id}.{event_id} has no {field}")))
            };
            let method = text("Method")?.to_uppercase();
            let path = text("Path")?.to_owned();
            let access = match properties.get("Auth") {
                Some(auth) if auth.get("Authorizer").and_then(Json::as_str) == Some("NONE") => {
                    Access::Public
                }
                Some(auth) => Access::Jwt {
                    scopes: strings(auth.get("AuthorizationScopes")),
                },
                // The HTTP API's DefaultAuthorizer applies.
                None => Access::Jwt { scopes: Vec::new() },
            };
            if routes
                .insert((method.clone(), path.clone()), access)
                .is_some()
            {
                return Err(shape(format!("{method} {path} is routed twice")));
            }
        }
    }
    Ok(routes)
}

fn strings(value: Option<&Json>) -> Vec<String> {
    let mut strings: Vec<String> = value
        .and_then(Json::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Json::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    strings.sort();
    strings
}

/// Every operation of the OpenAPI document except those marked `x-local-only` (the local
/// server's test clock), with its authorization.
pub fn openapi_routes(document: &Json) -> Result<Routes, CheckError> {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let default_security = document.get("security");
    let paths = document
        .get("paths")
        .and_then(Json::as_object)
        .ok_or_else(|| shape("document has no paths"))?;
    let mut routes = Routes::new();
    for (path, item) in paths {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            if operation.get("x-local-only").and_then(Json::as_bool) == Some(true) {
                continue;
            }
            let security = operation.get("security").or(default_security);
            let access = match security.and_then(Json::as_array) {
                None => Access::Public,
                Some(requirements) if requirements.is_empty() => Access::Public,
                Some(requirements) => {
                    let requirement = requirements
                        .first()
                        .and_then(Json::as_object)
                        .filter(|_| requirements.len() == 1)
                        .ok_or_else(|| {
                            shape(format!(
                                "{method} {path}: expected one security requirement"
                            ))
                        })?;
                    // Only `bearerJwt` is API Gateway's authorizer; any other scheme (Google's
                    // push token) is verified by the function, behind a public route.
                    match requirement.get("bearerJwt") {
                        Some(scopes) => Access::Jwt {
                            scopes: strings(Some(scopes)),
                        },
                        None => Access::Public,
                    }
                }
            };
            routes.insert((method.to_uppercase(), path.clone()), access);
        }
    }
    Ok(routes)
}

/// The properties of the template's one `AWS::DynamoDB::Table`.
pub fn template_table(template: &Json) -> Result<&Json, CheckError> {
    match resources_of_type(template, "AWS::DynamoDB::Table")?.as_slice() {
        [(_, table)] => table
            .get("Properties")
            .ok_or_else(|| shape("the table has no Properties")),
        tables => Err(shape(format!("expected one table, found {}", tables.len()))),
    }
}

/// `AttributeDefinitions` sorted by name: CloudFormation does not care about their order.
pub fn normalise_table(properties: &Json) -> Json {
    let mut properties = properties.clone();
    if let Some(attributes) = properties
        .get_mut("AttributeDefinitions")
        .and_then(Json::as_array_mut)
    {
        attributes.sort_by_key(|attribute| {
            attribute
                .get("AttributeName")
                .and_then(Json::as_str)
                .map(str::to_owned)
        });
    }
    properties
}

/// The repository's SAM template, parsed.
pub fn repo_template() -> Json {
    parse_template(&read("infra/template.yaml").expect("template readable"))
        .expect("template parses")
}

/// Every function of a template, by logical id.
pub fn functions(template: &Json) -> Vec<(&str, &Json)> {
    resources_of_type(template, "AWS::Serverless::Function").expect("resources")
}

/// The binary (the workspace package) a function resource builds.
pub fn binary_of(function: &Json) -> Option<&str> {
    function
        .pointer("/Metadata/BuildProperties/Binary")
        .and_then(Json::as_str)
}

/// The function that builds `binary`.
pub fn function_by_binary<'a>(template: &'a Json, binary: &str) -> &'a Json {
    functions(template)
        .into_iter()
        .find(|(_, f)| binary_of(f) == Some(binary))
        .map(|(_, f)| f)
        .unwrap_or_else(|| panic!("no function builds {binary}"))
}

/// Every statement of a function's role, found through its `Role: !GetAtt <Role>.Arn`.
pub fn role_statements<'a>(template: &'a Json, function: &Json) -> Vec<&'a Json> {
    let role_id = function
        .pointer("/Properties/Role/Fn::GetAtt/0")
        .and_then(Json::as_str)
        .expect("every function has its own role");
    let role = &template["Resources"][role_id];
    role.pointer("/Properties/Policies")
        .and_then(Json::as_array)
        .expect("the role has inline policies")
        .iter()
        .flat_map(|policy| {
            policy
                .pointer("/PolicyDocument/Statement")
                .and_then(Json::as_array)
                .expect("statements")
        })
        .collect()
}

/// A statement's actions (`Action` is a string or a list).
pub fn actions(statement: &Json) -> Vec<&str> {
    match statement.get("Action") {
        Some(Json::String(action)) => vec![action.as_str()],
        Some(Json::Array(actions)) => actions.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    }
}

/// IAM's `StringLike`: `*` matches any run of characters, `?` any one character.
pub fn string_like(pattern: &str, value: &str) -> bool {
    fn go(pattern: &[char], value: &[char]) -> bool {
        match pattern.split_first() {
            None => value.is_empty(),
            Some(('*', rest)) => (0..=value.len()).any(|skip| go(rest, &value[skip..])),
            Some((&expected, rest)) => value
                .split_first()
                .is_some_and(|(&c, tail)| (expected == '?' || expected == c) && go(rest, tail)),
        }
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let value: Vec<char> = value.chars().collect();
    go(&pattern, &value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_form_tags_become_their_long_form() {
        let template =
            "A: !Ref Table\nB: !GetAtt Table.StreamArn\nC: !Sub '${Table.Arn}/index/gsi1'\n";
        let json = parse_template(template).expect("valid YAML");
        assert_eq!(json["A"], serde_json::json!({"Ref": "Table"}));
        assert_eq!(
            json["B"],
            serde_json::json!({"Fn::GetAtt": ["Table", "StreamArn"]})
        );
        assert_eq!(
            json["C"],
            serde_json::json!({"Fn::Sub": "${Table.Arn}/index/gsi1"})
        );
    }

    #[test]
    fn a_route_without_auth_takes_the_default_authorizer_and_none_makes_it_public() {
        let template = r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        A: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: get, Path: /v1/a}}
        B: {Type: HttpApi, Properties: {Method: POST, Path: /v1/b, Auth: {Authorizer: NONE}}}
        C: {Type: HttpApi, Properties: {Method: POST, Path: /v1/c, Auth: {AuthorizationScopes: [x:admin]}}}
        D: {Type: Schedule, Properties: {Schedule: rate(1 minute)}}
"#;
        let routes =
            template_routes(&parse_template(template).expect("valid YAML")).expect("routes");
        assert_eq!(routes.len(), 3);
        assert_eq!(
            routes[&("GET".into(), "/v1/a".into())],
            Access::Jwt { scopes: vec![] }
        );
        assert_eq!(routes[&("POST".into(), "/v1/b".into())], Access::Public);
        assert_eq!(
            routes[&("POST".into(), "/v1/c".into())],
            Access::Jwt {
                scopes: vec!["x:admin".into()]
            }
        );
    }

    #[test]
    fn local_only_operations_are_not_routes_of_the_deployed_api() {
        let document = serde_json::json!({
            "security": [{"bearerJwt": []}],
            "paths": {
                "/v1/a": {"get": {}, "post": {"security": []}},
                "/_dev/clock": {"get": {"x-local-only": true, "security": []}}
            }
        });
        let routes = openapi_routes(&document).expect("routes");
        assert_eq!(routes.len(), 2);
        assert_eq!(
            routes[&("GET".into(), "/v1/a".into())],
            Access::Jwt { scopes: vec![] }
        );
        assert_eq!(routes[&("POST".into(), "/v1/a".into())], Access::Public);
    }

    #[test]
    fn string_like_matches_as_iam_does() {
        assert!(string_like("GIFT#*", "GIFT#alice#k1"));
        assert!(!string_like("GIFTS#*", "GIFT#alice#k1"));
        assert!(string_like("*", "GIFT#alice#k1"));
        assert!(string_like("G?FT#*", "GIFT#a"));
        assert!(!string_like("IDEM#*", "GIFT#alice#k1"));
        assert!(string_like("USER#*", "USER#"));
    }
}
