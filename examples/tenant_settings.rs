//! A script's first steps against Crowdminder: sign in, create an API token for later runs,
//! and read the tenant's settings with it.
//!
//! ```sh
//! scripts/dev.sh up    # in another terminal
//! cargo run --example tenant_settings -- http://127.0.0.1:8080 demo.localhost admin@demo.localhost demo-password
//! ```

use serde_json::{Value, json};

async fn graphql(
    client: &reqwest::Client,
    url: &str,
    host: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Result<Value, Box<dyn std::error::Error>> {
    let mut request = client
        .post(format!("{url}/graphql"))
        .header("Host", host)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let body: Value = request.send().await?.json().await?;
    if let Some(errors) = body.get("errors") {
        return Err(format!("GraphQL errors: {errors}").into());
    }
    Ok(body["data"].clone())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // reqwest is built without a default TLS provider in this project: use ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, host, email, password] = args.as_slice() else {
        eprintln!("usage: tenant_settings URL HOST EMAIL PASSWORD");
        std::process::exit(2);
    };
    let client = reqwest::Client::new();

    let login = graphql(
        &client,
        url,
        host,
        None,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        json!({ "e": email, "p": password }),
    )
    .await?;
    let jwt = login["login"]["token"].as_str().ok_or("no token")?;

    let created = graphql(
        &client,
        url,
        host,
        Some(jwt),
        "mutation { createApiToken(name: \"example script\") { secret } }",
        json!({}),
    )
    .await?;
    let api_token = created["createApiToken"]["secret"].as_str().ok_or("no secret")?;
    println!("API token (store it; it is shown once): {api_token}");

    let settings = graphql(
        &client,
        url,
        host,
        Some(api_token),
        "{ tenantSettings { timeZone timecaptureIntervalMinutes billableHoursInWorkingDay workWeek currency siteUrl } }",
        json!({}),
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&settings["tenantSettings"])?);
    Ok(())
}
