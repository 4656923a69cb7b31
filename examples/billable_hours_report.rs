//! What a reporting tool does with Crowdminder: with an API token, pull one month's billable
//! hours by client and print them as a table.
//!
//! ```sh
//! export CROWDMINDER_TOKEN=cmt_...   # createApiToken, as in examples/tenant_settings.rs
//! cargo run --example billable_hours_report -- http://127.0.0.1:8080 demo.localhost 2026-11
//! ```
//!
//! The month is in the tenant's time zone, as every date in Crowdminder. Leave it out for
//! the current month. The same rows come as CSV from
//! `GET /reports/billable-hours.csv?from=..&to=..&groupBy=CLIENT`.

use chrono::{Datelike, Months, NaiveDate};
use serde_json::{Value, json};

const REPORT: &str = "query($from: NaiveDate!, $to: NaiveDate!) {
  billableHours(from: $from, to: $to, groupBy: [CLIENT]) {
    rows { client { name } billableHours nonBillableHours amount currency }
    totals { billableHours nonBillableHours amount currency }
  }
}";

fn month_range(arg: Option<&str>) -> Result<(NaiveDate, NaiveDate), String> {
    let first = match arg {
        Some(month) => NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
            .map_err(|_| format!("{month} is not a month (YYYY-MM)"))?,
        None => {
            let today = chrono::Utc::now().date_naive();
            today.with_day(1).ok_or("no first day")?
        }
    };
    let last = first
        .checked_add_months(Months::new(1))
        .and_then(|next| next.pred_opt())
        .ok_or("month out of range")?;
    Ok((first, last))
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // reqwest is built without a default TLS provider in this project: use ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, host, month) = match args.as_slice() {
        [url, host] => (url, host, None),
        [url, host, month] => (url, host, Some(month.as_str())),
        _ => {
            eprintln!("usage: billable_hours_report URL HOST [YYYY-MM]   (token in CROWDMINDER_TOKEN)");
            std::process::exit(2);
        }
    };
    let token = std::env::var("CROWDMINDER_TOKEN").map_err(|_| "set CROWDMINDER_TOKEN to an API token")?;
    let (from, to) = month_range(month)?;

    let body: Value = reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .header("Host", host.as_str())
        .bearer_auth(token)
        .json(&json!({ "query": REPORT, "variables": { "from": from, "to": to } }))
        .send()
        .await?
        .json()
        .await?;
    if let Some(errors) = body.get("errors") {
        return Err(format!("the report was refused: {errors}").into());
    }
    let report = &body["data"]["billableHours"];

    println!("Billable hours by client, {from} to {to}\n");
    println!(
        "{:<32} {:>10} {:>14} {:>14}",
        "Client", "Billable", "Non-billable", "Amount"
    );
    println!("{}", "-".repeat(73));
    let empty = Vec::new();
    for row in report["rows"].as_array().unwrap_or(&empty) {
        println!(
            "{:<32} {:>10} {:>14} {:>10} {}",
            text(&row["client"]["name"]),
            text(&row["billableHours"]),
            text(&row["nonBillableHours"]),
            text(&row["amount"]),
            text(&row["currency"]),
        );
    }
    let totals = &report["totals"];
    println!("{}", "-".repeat(73));
    println!(
        "{:<32} {:>10} {:>14} {:>10} {}",
        "Total",
        text(&totals["billableHours"]),
        text(&totals["nonBillableHours"]),
        text(&totals["amount"]),
        text(&totals["currency"]),
    );
    Ok(())
}
