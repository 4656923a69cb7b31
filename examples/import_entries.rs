//! Imports time entries from a CSV file, safe to run again: each row carries an external
//! reference (its own `external_ref` column, or one derived from the row's content), and
//! Crowdminder returns the existing entry for a reference it already has.
//!
//! ```sh
//! export CROWDMINDER_TOKEN=cmt_...   # an admin's or manager's token to import for others
//! cargo run --example import_entries -- http://127.0.0.1:8080 demo.localhost entries.csv
//! ```
//!
//! The file has a header row naming its columns, in any order:
//!
//! | column        | required | meaning                                                   |
//! |---------------|----------|-----------------------------------------------------------|
//! | `client`      | yes      | client name (any casing)                                  |
//! | `project`     | yes      | project name within the client, or its code               |
//! | `date`        | *        | `YYYY-MM-DD`, with `minutes`                              |
//! | `minutes`     | *        | a multiple of the tenant's capture interval               |
//! | `started_at`  | *        | RFC 3339, with `ended_at`, instead of date and minutes    |
//! | `ended_at`    | *        |                                                           |
//! | `task`        | no       | task name within the project                              |
//! | `user_email`  | no       | whose time (default: the token's user)                    |
//! | `billable`    | no       | `true` / `false` (default: the task's, else the project's) |
//! | `notes`       | no       |                                                           |
//! | `external_ref`| no       | the row's key in the source system                        |
//!
//! Without `external_ref`, two rows alike in every column are one entry.

use std::collections::HashMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

type Error = Box<dyn std::error::Error>;

struct Api {
    client: reqwest::Client,
    url: String,
    host: String,
    token: String,
}

impl Api {
    async fn call(&self, query: &str, variables: Value) -> Result<Value, String> {
        let response = self
            .client
            .post(format!("{}/graphql", self.url))
            .header("Host", &self.host)
            .bearer_auth(&self.token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        match body.get("errors").and_then(|e| e.get(0)) {
            Some(error) => Err(format!(
                "{} ({}{})",
                error["message"].as_str().unwrap_or("error"),
                error["extensions"]["code"].as_str().unwrap_or("?"),
                error["extensions"]["field"]
                    .as_str()
                    .map(|f| format!(", {f}"))
                    .unwrap_or_default()
            )),
            None => Ok(body["data"].clone()),
        }
    }

    /// Every page of a connection, following `after`.
    async fn all(&self, field: &str, selection: &str) -> Result<Vec<Value>, String> {
        let mut nodes = Vec::new();
        let mut after = Value::Null;
        loop {
            let query = format!(
                "query($after: String) {{ {field}(first: 100, after: $after) {{ \
                   edges {{ cursor node {{ {selection} }} }} pageInfo {{ hasNextPage }} }} }}"
            );
            let data = self.call(&query, json!({ "after": after })).await?;
            let page = &data[field];
            let edges = page["edges"].as_array().cloned().unwrap_or_default();
            if let Some(last) = edges.last() {
                after = last["cursor"].clone();
            }
            nodes.extend(edges.into_iter().map(|e| e["node"].clone()));
            if page["pageInfo"]["hasNextPage"] != json!(true) {
                return Ok(nodes);
            }
        }
    }
}

/// Where rows are booked: ids by lower-cased names.
struct Lookup {
    /// (client, project name or code) -> project id
    projects: HashMap<(String, String), String>,
    /// (project id, task) -> task id
    tasks: HashMap<(String, String), String>,
    users: HashMap<String, String>,
}

async fn lookup(api: &Api, need_users: bool) -> Result<Lookup, String> {
    let mut projects = HashMap::new();
    let mut tasks = HashMap::new();
    for p in api
        .all("projects", "id name code client { name } tasks { id name }")
        .await?
    {
        let id = p["id"].as_str().unwrap_or_default().to_owned();
        let client = p["client"]["name"].as_str().unwrap_or_default().to_lowercase();
        projects.insert(
            (
                client.clone(),
                p["name"].as_str().unwrap_or_default().to_lowercase(),
            ),
            id.clone(),
        );
        if let Some(code) = p["code"].as_str() {
            projects.insert((client, code.to_lowercase()), id.clone());
        }
        for t in p["tasks"].as_array().cloned().unwrap_or_default() {
            tasks.insert(
                (id.clone(), t["name"].as_str().unwrap_or_default().to_lowercase()),
                t["id"].as_str().unwrap_or_default().to_owned(),
            );
        }
    }
    let mut users = HashMap::new();
    if need_users {
        for u in api.all("users", "id email").await? {
            users.insert(
                u["email"].as_str().unwrap_or_default().to_lowercase(),
                u["id"].as_str().unwrap_or_default().to_owned(),
            );
        }
    }
    Ok(Lookup {
        projects,
        tasks,
        users,
    })
}

/// The input of `createTimeEntry` for one row.
fn entry_input(row: &HashMap<String, String>, lookup: &Lookup) -> Result<Value, String> {
    let get = |name: &str| row.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let client = get("client").ok_or("no client")?;
    let project = get("project").ok_or("no project")?;
    let project_id = lookup
        .projects
        .get(&(client.to_lowercase(), project.to_lowercase()))
        .ok_or_else(|| format!("no project {project} of client {client}"))?;
    let mut input = json!({ "projectId": project_id });
    if let Some(task) = get("task") {
        let task_id = lookup
            .tasks
            .get(&(project_id.clone(), task.to_lowercase()))
            .ok_or_else(|| format!("no task {task} in project {project}"))?;
        input["taskId"] = json!(task_id);
    }
    if let Some(email) = get("user_email") {
        let user_id = lookup
            .users
            .get(&email.to_lowercase())
            .ok_or_else(|| format!("no user {email}"))?;
        input["userId"] = json!(user_id);
    }
    for (column, field) in [
        ("date", "date"),
        ("started_at", "startedAt"),
        ("ended_at", "endedAt"),
        ("notes", "notes"),
    ] {
        if let Some(value) = get(column) {
            input[field] = json!(value);
        }
    }
    if let Some(minutes) = get("minutes") {
        let minutes: i64 = minutes
            .parse()
            .map_err(|_| format!("minutes {minutes} is not a number"))?;
        input["minutes"] = json!(minutes);
    }
    if let Some(billable) = get("billable") {
        let billable = match billable.to_lowercase().as_str() {
            "true" | "yes" | "1" => true,
            "false" | "no" | "0" => false,
            other => return Err(format!("billable {other} is not true or false")),
        };
        input["billable"] = json!(billable);
    }
    input["externalRef"] = json!(match get("external_ref") {
        Some(reference) => reference.to_owned(),
        None => derived_ref(row),
    });
    Ok(input)
}

/// A reference from the row's content: the same row gives the same reference on every run.
fn derived_ref(row: &HashMap<String, String>) -> String {
    let mut columns: Vec<(&String, &String)> = row.iter().collect();
    columns.sort();
    let mut hash = Sha256::new();
    for (name, value) in columns {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(value.trim().as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("csv:{hex}")
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // reqwest is built without a default TLS provider in this project: use ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, host, path] = args.as_slice() else {
        eprintln!("usage: import_entries URL HOST FILE.csv   (token in CROWDMINDER_TOKEN)");
        std::process::exit(2);
    };
    let api = Api {
        client: reqwest::Client::new(),
        url: url.clone(),
        host: host.clone(),
        token: std::env::var("CROWDMINDER_TOKEN").map_err(|_| "set CROWDMINDER_TOKEN to an API token")?,
    };
    let mut reader = csv::Reader::from_path(path)?;
    let headers: Vec<String> = reader
        .headers()?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    let rows: Vec<HashMap<String, String>> = reader
        .records()
        .map(|r| r.map(|r| headers.iter().cloned().zip(r.iter().map(str::to_owned)).collect()))
        .collect::<Result<_, _>>()?;
    let lookup = lookup(&api, headers.iter().any(|h| h == "user_email")).await?;

    let started = chrono::Utc::now();
    let (mut created, mut existing, mut failed) = (0, 0, 0);
    for (i, row) in rows.iter().enumerate() {
        let line = i + 2;
        let outcome = match entry_input(row, &lookup) {
            Ok(input) => {
                api.call(
                    "mutation($i: CreateTimeEntryInput!) { createTimeEntry(input: $i) { id createdAt } }",
                    json!({ "i": input }),
                )
                .await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(data) => {
                let created_at = data["createTimeEntry"]["createdAt"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                if created_at.is_some_and(|t| t < started) {
                    existing += 1;
                } else {
                    created += 1;
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("line {line}: {e}");
            }
        }
    }
    println!("{created} created, {existing} already imported, {failed} refused");
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
