//! The edge and the identity provider, as deployed: one source IP cannot dodge the rate limit
//! by sending a fresh token each time, the API is reached only through the edge when there is
//! one, and the user pool the template can create lets no user write what the API reads from
//! their token, nor get the admin scope.

use std::collections::BTreeSet;

use coins_http::origin::{ORIGIN_HEADER, ORIGIN_SECRET_VAR};
use coins_testkit::function_names;
use infra_check::{function_by_binary, repo_template};
use serde_json::{Value as Json, json};

fn rule<'a>(template: &'a Json, name: &str) -> &'a Json {
    template["Resources"]["EdgeWebAcl"]["Properties"]["Rules"]
        .as_array()
        .expect("the web ACL has rules")
        .iter()
        .find(|rule| rule["Name"] == name)
        .unwrap_or_else(|| panic!("no rule {name}"))
}

/// A rate-based statement keyed on the raw `Authorization` header counts each random string
/// apart; a rule keyed on the source IP alone, over every request, counts them together.
#[test]
fn every_source_ip_is_rate_limited_whatever_tokens_it_sends() {
    let template = repo_template();
    let per_ip = rule(&template, "per-source-ip");
    let rate = &per_ip["Statement"]["RateBasedStatement"];
    assert_eq!(rate["AggregateKeyType"], "IP");
    assert_eq!(rate["Limit"]["Ref"], "SourceIpRateLimit");
    assert!(
        rate.get("ScopeDownStatement").is_none(),
        "the per-IP rule counts every request, with a token or without"
    );
    assert_eq!(
        per_ip["Action"]["Block"]["CustomResponse"]["ResponseCode"],
        429
    );
    let per_caller = rule(&template, "per-caller");
    assert!(
        per_ip["Priority"].as_u64() < per_caller["Priority"].as_u64(),
        "the per-IP rule is evaluated first"
    );
    let parameter = &template["Parameters"]["SourceIpRateLimit"];
    assert!(parameter["MinValue"].as_u64() >= Some(10), "WAF's minimum");
}

/// The edge adds a secret header that CloudFront alone knows; every function behind the API
/// gets the value to check (`coins_http::origin`), only when the edge is on.
#[test]
fn with_the_edge_on_the_api_answers_only_requests_that_came_through_it() {
    let template = repo_template();
    let secret = &template["Resources"]["EdgeOriginSecret"];
    assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
    assert_eq!(secret["Condition"], "HasEdge");
    let value = json!({"Fn::Sub": "{{resolve:secretsmanager:${EdgeOriginSecret}:SecretString}}"});
    let origin = &template["Resources"]["EdgeDistribution"]["Properties"]["DistributionConfig"]["Origins"]
        [0];
    let headers = origin["OriginCustomHeaders"]
        .as_array()
        .expect("the edge adds headers");
    assert!(
        headers.iter().any(|header| {
            header["HeaderName"]
                .as_str()
                .is_some_and(|name| name.eq_ignore_ascii_case(ORIGIN_HEADER))
                && header["HeaderValue"] == value
        }),
        "the edge adds {ORIGIN_HEADER} with the secret: {headers:?}"
    );
    let expected = json!({"Fn::If": ["HasEdge", value, {"Ref": "AWS::NoValue"}]});
    for binary in function_names() {
        let function = function_by_binary(&template, &binary);
        let has_routes = function["Properties"]["Events"]
            .as_object()
            .is_some_and(|events| events.values().any(|e| e["Type"] == "HttpApi"));
        let variable = &function["Properties"]["Environment"]["Variables"][ORIGIN_SECRET_VAR];
        if has_routes {
            assert_eq!(variable, &expected, "{binary} checks the edge's header");
        } else {
            assert!(variable.is_null(), "{binary} serves no route");
        }
    }
}

fn resource<'a>(template: &'a Json, id: &str) -> &'a Json {
    let resource = &template["Resources"][id];
    assert_eq!(
        resource["Condition"], "HasUserPool",
        "{id} is created on demand"
    );
    &resource["Properties"]
}

fn strings(value: &Json) -> BTreeSet<&str> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Json::as_str)
        .collect()
}

/// The claims the functions read (`coins_http::claims`), as Cognito stores them.
const CLAIM_ATTRIBUTES: [&str; 4] = [
    "birthdate",
    "zoneinfo",
    "custom:billing_country",
    "custom:billing_region",
];

#[test]
fn no_app_client_of_the_user_pool_may_write_what_the_api_reads_from_tokens() {
    let template = repo_template();
    assert_eq!(
        template["Parameters"]["CreateUserPool"]["AllowedValues"],
        json!(["true", "false"])
    );
    let pool = resource(&template, "UserPool");
    let custom: BTreeSet<&str> = pool["Schema"]
        .as_array()
        .expect("a schema")
        .iter()
        .filter_map(|attribute| attribute["Name"].as_str())
        .collect();
    assert_eq!(
        custom,
        BTreeSet::from(["billing_country", "billing_region"])
    );
    for client in ["UserAppClient", "AdminAppClient"] {
        let properties = resource(&template, client);
        let writable = strings(&properties["WriteAttributes"]);
        let readable = strings(&properties["ReadAttributes"]);
        for attribute in CLAIM_ATTRIBUTES {
            assert!(
                !writable.contains(attribute),
                "{client} may write {attribute}"
            );
            assert!(
                readable.contains(attribute),
                "{client} cannot read {attribute}"
            );
        }
        // An hour at most: a corrected claim reaches the API within it.
        assert_eq!(properties["TokenValidityUnits"]["AccessToken"], "minutes");
        assert!(
            properties["AccessTokenValidity"].as_u64() <= Some(60),
            "{client}"
        );
    }
}

#[test]
fn only_the_admin_client_can_obtain_the_admin_scope() {
    let template = repo_template();
    let server = resource(&template, "CoinsResourceServer");
    assert_eq!(server["Identifier"], "coins");
    assert_eq!(server["Scopes"][0]["ScopeName"], "admin");
    let admin = resource(&template, "AdminAppClient");
    assert!(strings(&admin["AllowedOAuthScopes"]).contains("coins/admin"));
    assert_eq!(admin["GenerateSecret"], true, "an app cannot run its flow");
    let app = resource(&template, "UserAppClient");
    let app_scopes = app
        .get("AllowedOAuthScopes")
        .map(strings)
        .unwrap_or_default();
    assert!(!app_scopes.contains("coins/admin"));
    // Every client of the pool is one of these two.
    let clients: Vec<&str> =
        infra_check::resources_of_type(&template, "AWS::Cognito::UserPoolClient")
            .expect("resources")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
    assert_eq!(clients, ["AdminAppClient", "UserAppClient"]);
    // The trigger names the claims as the API reads them and grants coins:admin for coins/admin.
    let code = resource(&template, "TokenClaimsFunction")["Code"]["ZipFile"]
        .as_str()
        .expect("inline code");
    for (claim, attribute) in [
        ("\"billing_country\"", "\"custom:billing_country\""),
        ("\"billing_region\"", "\"custom:billing_region\""),
        ("\"birthdate\"", "\"birthdate\""),
        ("\"zoneinfo\"", "\"zoneinfo\""),
    ] {
        assert!(
            code.contains(&format!("{claim}: {attribute}")),
            "the trigger maps {attribute} to {claim}"
        );
    }
    assert!(code.contains(&format!("\"{}\"", coins_http::claims::ADMIN_SCOPE)));
    assert_eq!(
        resource(&template, "UserPool")["LambdaConfig"]["PreTokenGenerationConfig"],
        json!({"LambdaArn": {"Fn::GetAtt": ["TokenClaimsFunction", "Arn"]}, "LambdaVersion": "V2_0"})
    );
}

#[test]
fn the_jwt_authorizer_trusts_the_created_pool_and_its_clients() {
    let template = repo_template();
    let jwt = &template["Resources"]["HttpApi"]["Properties"]["Auth"]["Authorizers"]["CoinsJwt"]["JwtConfiguration"];
    assert_eq!(
        jwt["issuer"],
        json!({"Fn::If": ["HasUserPool", {"Fn::Sub": "https://${UserPool.ProviderURL}"}, {"Ref": "JwtIssuer"}]})
    );
    assert_eq!(
        jwt["audience"],
        json!({"Fn::If": ["HasUserPool", [{"Ref": "UserAppClient"}, {"Ref": "AdminAppClient"}], {"Ref": "JwtAudience"}]})
    );
    let assertions = &template["Rules"]["ExternalIdentityProviderNamed"]["Assertions"];
    assert_eq!(assertions.as_array().map(Vec::len), Some(2));
}

/// Runs the trigger's inline code on `event` with the system's Python, as Cognito would call it.
fn run_trigger(code: &str, event: &Json) -> Json {
    let program = format!(
        "{code}\nimport json, sys\nprint(json.dumps(handler(json.load(sys.stdin), None)))\n"
    );
    let mut child = std::process::Command::new("python3")
        .args(["-c", &program])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/test needs it too)");
    std::io::Write::write_all(
        child.stdin.as_mut().expect("stdin"),
        event.to_string().as_bytes(),
    )
    .expect("the event is sent");
    let output = child.wait_with_output().expect("the trigger ends");
    assert!(output.status.success(), "the trigger failed");
    serde_json::from_slice(&output.stdout).expect("the trigger answers JSON")
}

/// A pre token generation (V2_0) event as Cognito sends it.
fn token_event(scopes: &[&str], groups: &[&str], region: Option<&str>) -> Json {
    let mut attributes = json!({
        "sub": "u-1", "email": "a@example.com", "birthdate": "1990-04-01",
        "zoneinfo": "America/Chicago", "custom:billing_country": "US"
    });
    if let Some(region) = region {
        attributes["custom:billing_region"] = json!(region);
    }
    json!({
        "version": "2", "triggerSource": "TokenGeneration_Authentication",
        "request": {"userAttributes": attributes, "scopes": scopes,
                    "groupConfiguration": {"groupsToOverride": groups}},
        "response": {"claimsAndScopeOverrideDetails": null}
    })
}

#[test]
fn the_token_trigger_names_the_claims_as_the_api_reads_them_and_grants_admin_to_admins_only() {
    let template = repo_template();
    let code = resource(&template, "TokenClaimsFunction")["Code"]["ZipFile"]
        .as_str()
        .expect("inline code");
    let access = |event: &Json| {
        run_trigger(code, event)["response"]["claimsAndScopeOverrideDetails"]
            ["accessTokenGeneration"]
            .clone()
    };
    let user = access(&token_event(
        &["aws.cognito.signin.user.admin"],
        &[],
        Some("US-AL"),
    ));
    assert_eq!(
        user["claimsToAddOrOverride"],
        json!({"billing_country": "US", "billing_region": "US-AL", "birthdate": "1990-04-01",
               "zoneinfo": "America/Chicago"})
    );
    assert_eq!(user["scopesToAdd"], json!([]));
    let no_region = access(&token_event(&[], &[], None));
    assert!(
        no_region["claimsToAddOrOverride"]
            .get("billing_region")
            .is_none()
    );
    // The admin client's scope, for an admin: coins:admin, and Cognito's own name removed.
    let admin = access(&token_event(&["openid", "coins/admin"], &["admins"], None));
    assert_eq!(admin["scopesToAdd"], json!(["coins:admin"]));
    assert_eq!(admin["scopesToSuppress"], json!(["coins/admin"]));
    // The admin client for someone outside the group, or the group without the admin client.
    for (scopes, groups) in [
        (&["openid", "coins/admin"][..], &[][..]),
        (&["openid"][..], &["admins"][..]),
    ] {
        let token = access(&token_event(scopes, groups, None));
        assert_eq!(token["scopesToAdd"], json!([]), "{scopes:?} {groups:?}");
    }
}
