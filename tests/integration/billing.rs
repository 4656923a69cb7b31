//! Invoices through the API, against PostgreSQL: totals, numbering under concurrency, one
//! live invoice per entry, issue, payments and void, and who may see them.

use crate::common::{TestApp, TestTenant, assert_error};
use serde_json::{Value, json};

const INVOICE_FIELDS: &str = "id number status currency taxRate discountRate subtotal discount tax total paid \
    balanceDue issueDate dueDate overdue lines { id kind description quantity unitPrice amount minutes \
    entries { id minutes } } payments { amount date }";

fn create_invoice_query() -> String {
    format!("mutation($i: CreateInvoiceInput!) {{ createInvoice(input: $i) {{ {INVOICE_FIELDS} }} }}")
}

fn issue_query() -> String {
    format!("mutation($id: ID!) {{ issueInvoice(id: $id) {{ {INVOICE_FIELDS} }} }}")
}

/// A client "Globex Ltd" (billing email ap@globex.example) with a project "Project i"
/// (code Pi) at each rate of `rates`.
async fn client_with_projects(
    app: &TestApp,
    t: &TestTenant,
    admin: &str,
    rates: &[&str],
) -> (Value, Vec<Value>) {
    let build = app.as_user(t, admin);
    let client = build
        .client_with(json!({ "name": "Globex Ltd", "billingEmail": "ap@globex.example" }))
        .await;
    let mut projects = Vec::new();
    for (i, rate) in rates.iter().enumerate() {
        projects.push(
            build
                .project_with(json!({ "clientId": client, "name": format!("Project {i}"),
                                      "code": format!("P{i}"), "hourlyRate": rate }))
                .await,
        );
    }
    (client, projects)
}

/// A draft for `client` over October 2026, made by `admin`, with whatever time is billable.
async fn october_draft(app: &TestApp, t: &TestTenant, admin: &str, client: &Value) -> Value {
    app.gql(
        &t.host,
        Some(admin),
        "mutation($i: CreateInvoiceInput!) { createInvoice(input: $i) { id } }",
        json!({ "i": { "clientId": client, "from": "2026-10-01", "to": "2026-10-31" } }),
    )
    .await["createInvoice"]["id"]
        .clone()
}

/// Approval of time is the timesheet flow's business (tested with time tracking); here the
/// entries are simply marked approved.
async fn approve_all(app: &TestApp, schema: &str) {
    app.exec(&format!(
        "UPDATE {schema}.time_entries SET status = 'APPROVED' WHERE status = 'DRAFT'"
    ))
    .await;
}

#[tokio::test]
async fn totals_are_exact_to_the_cent_for_awkward_rates_and_minutes() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    app.as_user(&t, &admin)
        .settings(json!({ "timecaptureIntervalMinutes": 1, "defaultTaxRate": "15", "currency": "EUR" }))
        .await;
    let (client, projects) = client_with_projects(&app, &t, &admin, &["333.33", "95.55"]).await;
    app.as_user(&t, &admin).log(&projects[0], "2026-10-05", 7).await;
    app.as_user(&t, &admin).log(&projects[1], "2026-10-06", 20).await;
    app.as_user(&t, &admin).log(&projects[1], "2026-10-07", 25).await;
    // Outside the period, and not yet approved: neither is billed.
    app.as_user(&t, &admin).log(&projects[1], "2026-11-02", 60).await;
    approve_all(&app, "acme").await;
    app.as_user(&t, &admin).log(&projects[1], "2026-10-08", 60).await;

    let created = app
        .gql(
            &t.host,
            Some(&admin),
            &create_invoice_query(),
            json!({ "i": { "clientId": client, "from": "2026-10-01", "to": "2026-10-31", "groupBy": "PROJECT" } }),
        )
        .await["createInvoice"]
        .clone();
    let lines = created["lines"].as_array().unwrap();
    // 7 min x 333.33 / 60 = 38.8885 -> 38.89; 45 min x 95.55 / 60 = 71.6625 -> 71.66.
    assert_eq!(lines.len(), 2, "{created}");
    assert_eq!(
        (
            &lines[0]["description"],
            &lines[0]["minutes"],
            &lines[0]["quantity"],
            &lines[0]["amount"]
        ),
        (
            &json!("P0 Project 0"),
            &json!(7),
            &json!("0.1167"),
            &json!("38.89")
        )
    );
    assert_eq!(lines[0]["unitPrice"], "333.33");
    assert_eq!(lines[1]["amount"], "71.66");
    assert_eq!(lines[1]["entries"].as_array().unwrap().len(), 2);
    // Subtotal 110.55, tax 15 % = 16.5825 -> 16.58, total 127.13.
    assert_eq!(
        (
            &created["subtotal"],
            &created["tax"],
            &created["total"],
            &created["currency"]
        ),
        (&json!("110.55"), &json!("16.58"), &json!("127.13"), &json!("EUR"))
    );
    assert_eq!(created["status"], "DRAFT");
    assert_eq!(created["number"], Value::Null);

    // A manual line: 1.5 x 33.333 = 49.9995 -> 50.00.
    let invoice = created["id"].clone();
    let line = app
        .gql(
            &t.host,
            Some(&admin),
            "mutation($id: ID!, $i: InvoiceLineInput!) { addInvoiceLine(invoiceId: $id, input: $i) { id amount kind } }",
            json!({ "id": invoice, "i": { "description": "Travel", "quantity": "1.5", "unitPrice": "33.333" } }),
        )
        .await["addInvoiceLine"]
        .clone();
    assert_eq!(
        (&line["amount"], &line["kind"]),
        (&json!("50.00"), &json!("MANUAL"))
    );
    // A 10 % discount: 160.55 x 10 % = 16.055 -> 16.06; 144.49 taxed 15 % = 21.6735 -> 21.67.
    let updated = app
        .gql(
            &t.host,
            Some(&admin),
            "mutation($id: ID!) { updateInvoice(id: $id, input: {discountRate: \"10\"}) { subtotal discount tax total } }",
            json!({ "id": invoice }),
        )
        .await["updateInvoice"]
        .clone();
    assert_eq!(
        updated,
        json!({ "subtotal": "160.55", "discount": "16.06", "tax": "21.67", "total": "166.16" })
    );
    // A time line's hours are its entries'.
    let (_, error) = app
        .gql_error(
            &t.host,
            Some(&admin),
            "mutation($id: ID!) { updateInvoiceLine(id: $id, input: {quantity: \"3\"}) { id } }",
            json!({ "id": lines[0]["id"] }),
        )
        .await;
    assert_error(&error, "BAD_USER_INPUT", Some("input.quantity"));

    // Issued: numbered, dated, frozen; its entries are INVOICED and locked.
    let issued = app
        .gql(&t.host, Some(&admin), &issue_query(), json!({ "id": invoice }))
        .await["issueInvoice"]
        .clone();
    let year = issued["issueDate"].as_str().unwrap()[..4].to_owned();
    assert_eq!(issued["number"], format!("INV-{year}-0001"));
    assert_eq!(
        (&issued["status"], &issued["balanceDue"]),
        (&json!("ISSUED"), &json!("166.16"))
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM acme.time_entries WHERE status = 'INVOICED'")
            .await,
        3
    );
    for (query, vars) in [
        (
            "mutation($id: ID!, $i: InvoiceLineInput!) { addInvoiceLine(invoiceId: $id, input: $i) { id } }",
            json!({ "id": invoice, "i": { "description": "More", "unitPrice": "1" } }),
        ),
        (
            "mutation($id: ID!) { updateInvoice(id: $id, input: {taxRate: \"0\"}) { id } }",
            json!({ "id": invoice }),
        ),
        (
            "mutation($id: ID!) { removeInvoiceLine(id: $id) { id } }",
            json!({ "id": line["id"] }),
        ),
        (
            "mutation($id: ID!) { deleteInvoice(id: $id) }",
            json!({ "id": invoice }),
        ),
        (
            "mutation($id: ID!) { issueInvoice(id: $id) { id } }",
            json!({ "id": invoice }),
        ),
    ] {
        let (code, _) = app.gql_error(&t.host, Some(&admin), query, vars).await;
        assert_eq!(code, "CONFLICT", "{query}");
    }
    let entry = lines[0]["entries"][0]["id"].clone();
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&admin),
            "mutation($id: ID!) { updateTimeEntry(id: $id, input: {notes: \"changed\"}) { id } }",
            json!({ "id": entry }),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    assert_eq!(
        app.count("SELECT (subtotal * 100)::bigint AS n FROM acme.invoices")
            .await,
        16055
    );
}

#[tokio::test]
async fn fifty_concurrent_issues_take_fifty_consecutive_numbers_per_tenant() {
    let app = TestApp::with_pool_size(8).await;
    let mut tenants = Vec::new();
    for schema in ["acme", "globex"] {
        let t = app.create_tenant(schema).await;
        let admin = app.login_admin(&t).await;
        let (client, _) = client_with_projects(&app, &t, &admin, &[]).await;
        tenants.push((t, admin, client));
    }
    let (acme, admin, client) = &tenants[0];
    let mut drafts = Vec::new();
    for i in 0..50 {
        let draft = october_draft(&app, acme, admin, client).await;
        app.gql(
            &acme.host,
            Some(admin),
            "mutation($id: ID!, $i: InvoiceLineInput!) { addInvoiceLine(invoiceId: $id, input: $i) { id } }",
            json!({ "id": draft, "i": { "description": format!("Retainer {i}"), "unitPrice": "1000" } }),
        )
        .await;
        drafts.push(draft);
    }
    let issues = drafts.iter().map(|id| {
        app.post(
            &acme.host,
            Some(admin),
            "mutation($id: ID!) { issueInvoice(id: $id) { number } }",
            json!({ "id": id }),
        )
    });
    let mut numbers: Vec<String> = futures_util::future::join_all(issues)
        .await
        .into_iter()
        .map(|(status, body)| {
            assert_eq!(status, 200);
            assert!(body.get("errors").is_none(), "{body}");
            body["data"]["issueInvoice"]["number"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    numbers.sort();
    let year = &numbers[0][4..8];
    let expected: Vec<String> = (1..=50).map(|n| format!("INV-{year}-{n:04}")).collect();
    assert_eq!(numbers, expected);

    // Globex numbers on its own: its first invoice is 0001 too.
    let (globex, globex_admin, globex_client) = &tenants[1];
    let draft = october_draft(&app, globex, globex_admin, globex_client).await;
    app.gql(
        &globex.host,
        Some(globex_admin),
        "mutation($id: ID!) { addInvoiceLine(invoiceId: $id, input: {description: \"Setup\", unitPrice: \"5\"}) { id } }",
        json!({ "id": draft }),
    )
    .await;
    // An empty draft is not issued, and takes no number.
    let empty = october_draft(&app, globex, globex_admin, globex_client).await;
    let (code, _) = app
        .gql_error(
            &globex.host,
            Some(globex_admin),
            "mutation($id: ID!) { issueInvoice(id: $id) { id } }",
            json!({ "id": empty }),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    let issued = app
        .gql(
            &globex.host,
            Some(globex_admin),
            "mutation($id: ID!) { issueInvoice(id: $id) { number } }",
            json!({ "id": draft }),
        )
        .await;
    assert_eq!(issued["issueInvoice"]["number"], format!("INV-{year}-0001"));
    // The same id is each tenant's own invoice.
    let query = "query($id: ID!) { invoice(id: $id) { lines { description } } }";
    let at_globex = app
        .gql(
            &globex.host,
            Some(globex_admin),
            query,
            json!({ "id": drafts[0] }),
        )
        .await;
    assert_eq!(at_globex["invoice"]["lines"], json!([{ "description": "Setup" }]));
    let at_acme = app
        .gql(&acme.host, Some(admin), query, json!({ "id": drafts[0] }))
        .await;
    assert_eq!(
        at_acme["invoice"]["lines"],
        json!([{ "description": "Retainer 0" }])
    );
}

#[tokio::test]
async fn an_entry_lands_on_one_invoice_even_when_two_drafts_are_made_at_once() {
    let app = TestApp::with_pool_size(6).await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let (client, projects) = client_with_projects(&app, &t, &admin, &["120"]).await;
    for day in 1..=20 {
        app.as_user(&t, &admin)
            .log(&projects[0], &format!("2026-10-{day:02}"), 60)
            .await;
    }
    approve_all(&app, "acme").await;
    let create = || {
        app.post(
            &t.host,
            Some(&admin),
            "mutation($i: CreateInvoiceInput!) { createInvoice(input: $i) { id lines { entries { id } } } }",
            json!({ "i": { "clientId": client, "from": "2026-10-01", "to": "2026-10-31", "groupBy": "ENTRY" } }),
        )
    };
    let (a, b) = tokio::join!(create(), create());
    let mut billed = Vec::new();
    for (status, body) in [a, b] {
        assert_eq!(status, 200);
        if let Some(lines) = body["data"]["createInvoice"]["lines"].as_array() {
            for line in lines {
                for e in line["entries"].as_array().unwrap() {
                    billed.push(e["id"].as_str().unwrap().to_owned());
                }
            }
        } else {
            assert_eq!(body["errors"][0]["extensions"]["code"], "CONFLICT", "{body}");
        }
    }
    billed.sort();
    let total = billed.len();
    billed.dedup();
    assert_eq!((total, billed.len()), (20, 20), "every entry billed exactly once");
    assert_eq!(
        app.count("SELECT count(DISTINCT time_entry_id) AS n FROM acme.invoice_entries WHERE live")
            .await,
        20
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM acme.invoice_entries WHERE live")
            .await,
        20
    );
}

#[tokio::test]
async fn voiding_releases_entries_payments_settle_and_members_see_no_invoices() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let manager = app.create_user(&t, &admin, "pm@acme.example", "MANAGER").await;
    let member = app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let (client, projects) = client_with_projects(&app, &t, &admin, &["100"]).await;
    app.as_user(&t, &admin).log(&projects[0], "2026-10-05", 90).await;
    app.as_user(&t, &admin).log(&projects[0], "2026-10-06", 30).await;
    approve_all(&app, "acme").await;
    let new_draft = || async {
        app.gql(
            &t.host,
            Some(&admin),
            &create_invoice_query(),
            json!({ "i": { "clientId": client, "from": "2026-10-01", "to": "2026-10-31", "taxRate": "0" } }),
        )
        .await["createInvoice"]
            .clone()
    };
    let first = new_draft().await;
    assert_eq!(first["total"], "200.00");
    // Nothing is left for a second draft while the first holds the entries.
    let second = new_draft().await;
    assert_eq!(second["lines"], json!([]));
    app.gql(
        &t.host,
        Some(&admin),
        "mutation($id: ID!) { deleteInvoice(id: $id) }",
        json!({ "id": second["id"] }),
    )
    .await;
    let issued = app
        .gql(
            &t.host,
            Some(&admin),
            &issue_query(),
            json!({ "id": first["id"] }),
        )
        .await["issueInvoice"]
        .clone();
    let number = issued["number"].as_str().unwrap().to_owned();

    // Void (with a reason): the number stays, the entries go back to APPROVED.
    let (_, error) = app
        .gql_error(
            &t.host,
            Some(&admin),
            "mutation($id: ID!) { voidInvoice(id: $id, reason: \" \") { id } }",
            json!({ "id": first["id"] }),
        )
        .await;
    assert_error(&error, "BAD_USER_INPUT", Some("reason"));
    let voided = app
        .gql(
            &t.host,
            Some(&admin),
            "mutation($id: ID!) { voidInvoice(id: $id, reason: \"wrong rate\") { status number voidReason balanceDue } }",
            json!({ "id": first["id"] }),
        )
        .await["voidInvoice"]
        .clone();
    assert_eq!(
        voided,
        json!({ "status": "VOID", "number": number, "voidReason": "wrong rate", "balanceDue": "0.00" })
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM acme.time_entries WHERE status = 'APPROVED'")
            .await,
        2
    );
    // They are billed again, under the next number: no gap, no reuse.
    let again = new_draft().await;
    assert_eq!(again["total"], "200.00");
    let reissued = app
        .gql(
            &t.host,
            Some(&admin),
            &issue_query(),
            json!({ "id": again["id"] }),
        )
        .await["issueInvoice"]
        .clone();
    assert_eq!(reissued["number"], number.replace("-0001", "-0002"));

    // Payments: more than is due is refused; parts add up to PAID.
    const PAY: &str = "mutation($id: ID!, $a: Decimal!, $d: NaiveDate!) { recordPayment(invoiceId: $id, amount: $a, date: $d) { \
        amount invoice { status paid balanceDue } } }";
    let today = reissued["issueDate"].clone();
    let pay = |amount: &'static str| {
        let vars = json!({ "id": again["id"], "a": amount, "d": today });
        let (app, host, admin) = (&app, t.host.clone(), admin.clone());
        async move { app.post(&host, Some(&admin), PAY, vars).await.1 }
    };
    let code = |body: &Value| body["errors"][0]["extensions"]["code"].clone();
    assert_eq!(code(&pay("200.01").await), "CONFLICT");
    assert_eq!(code(&pay("10.001").await), "BAD_USER_INPUT");
    let part = pay("120.5").await;
    assert_eq!(
        part["data"]["recordPayment"],
        json!({ "amount": "120.50", "invoice": { "status": "ISSUED", "paid": "120.50", "balanceDue": "79.50" } })
    );
    // Partly paid: not voided.
    let (void_code, _) = app
        .gql_error(
            &t.host,
            Some(&admin),
            "mutation($id: ID!) { voidInvoice(id: $id, reason: \"x\") { id } }",
            json!({ "id": again["id"] }),
        )
        .await;
    assert_eq!(void_code, "CONFLICT");
    let rest = pay("79.50").await;
    assert_eq!(
        rest["data"]["recordPayment"]["invoice"]["status"], "PAID",
        "{rest}"
    );
    assert_eq!(code(&pay("1").await), "CONFLICT");

    // Managers read invoices, but only admins change them; members see none.
    let listed = app
        .gql(
            &t.host,
            Some(&manager),
            "{ invoices(filter: {statuses: [PAID, VOID]}) { edges { node { number status payments { amount } } } } }",
            json!({}),
        )
        .await;
    let edges = listed["invoices"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2);
    assert_eq!(
        edges[1]["node"]["payments"],
        json!([{ "amount": "120.50" }, { "amount": "79.50" }])
    );
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&manager),
            "mutation($i: CreateInvoiceInput!) { createInvoice(input: $i) { id } }",
            json!({ "i": { "clientId": client, "from": "2026-10-01", "to": "2026-10-31" } }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    for query in [
        "{ invoices { edges { node { id } } } }",
        "query($id: ID!) { invoice(id: $id) { id } }",
    ] {
        let (code, _) = app
            .gql_error(&t.host, Some(&member), query, json!({ "id": again["id"] }))
            .await;
        assert_eq!(code, "FORBIDDEN", "{query}");
    }
    let node = app
        .post(
            &t.host,
            Some(&member),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": again["id"] }),
        )
        .await
        .1;
    assert!(node["data"]["node"].is_null(), "{node}");

    // Overdue comes from the due date in the tenant's zone.
    app.exec("UPDATE acme.invoices SET status = 'ISSUED', paid = 0, due_date = current_date - 1 WHERE status = 'PAID'").await;
    let overdue = app
        .gql(
            &t.host,
            Some(&manager),
            "{ invoices(filter: {overdue: true}) { edges { node { number overdue } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        overdue["invoices"]["edges"],
        json!([{ "node": { "number": reissued["number"], "overdue": true } }])
    );
}

/// The text of a PDF as pdftotext reads it (with the layout kept).
fn pdf_text(bytes: &[u8]) -> String {
    let path = crate::common::temp_dir("pdf").join("invoice.pdf");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", path.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils) is installed by scripts/dev.sh test");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_invoice_pdf_shows_its_numbers_and_names_only_to_its_tenants_managers() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    let admin = app.login_admin(&t).await;
    let globex_admin = app.login_admin(&globex).await;
    let manager = app.create_user(&t, &admin, "pm@acme.example", "MANAGER").await;
    let member = app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    app.as_user(&t, &admin)
        .settings(json!({ "defaultTaxRate": "15", "currency": "CHF" }))
        .await;
    let build = app.as_user(&t, &admin);
    let client = build
        .client_with(
            json!({ "name": "Zürcher Ärztehaus AG", "billingEmail": "buchhaltung@aerztehaus.example" }),
        )
        .await;
    let project = build.project(&client, "Ωmega Łódź rollout", "1234.5").await;
    app.as_user(&t, &admin).log(&project, "2026-10-05", 480).await;
    approve_all(&app, "acme").await;
    let draft = app
        .gql(
            &t.host,
            Some(&admin),
            &create_invoice_query(),
            json!({ "i": { "clientId": client, "from": "2026-10-01", "to": "2026-10-31" } }),
        )
        .await["createInvoice"]
        .clone();
    // Many manual lines, so the PDF runs over pages.
    for i in 0..80 {
        app.gql(
            &t.host,
            Some(&admin),
            "mutation($id: ID!, $i: InvoiceLineInput!) { addInvoiceLine(invoiceId: $id, input: $i) { id } }",
            json!({ "id": draft["id"], "i": { "description": format!("Expense {i}: Übernachtung"), "unitPrice": "10" } }),
        )
        .await;
    }
    let issued = app
        .gql(
            &t.host,
            Some(&admin),
            &issue_query(),
            json!({ "id": draft["id"] }),
        )
        .await["issueInvoice"]
        .clone();
    let number = issued["number"].as_str().unwrap().to_owned();
    // 8 h x 1,234.50 = 9,876.00; + 800 = 10,676.00; tax 15 % = 1,601.40; total 12,277.40.
    assert_eq!(issued["total"], "12277.40");
    let url = app
        .gql(
            &t.host,
            Some(&admin),
            "query($id: ID!) { invoice(id: $id) { pdfUrl } }",
            json!({ "id": draft["id"] }),
        )
        .await["invoice"]["pdfUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = url.split_once(&t.host).unwrap().1.to_owned();
    assert_eq!(path, format!("/invoices/{}.pdf", draft["id"].as_str().unwrap()));

    for token in [&admin, &manager] {
        let (status, headers, bytes) = app.get_raw(&t.host, Some(token), &path).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "application/pdf");
        assert!(
            headers["content-disposition"]
                .to_str()
                .unwrap()
                .contains(&format!("{number}.pdf"))
        );
        assert!(bytes.starts_with(b"%PDF-"));
        let text = pdf_text(&bytes);
        for expected in [
            number.as_str(),
            "Company acme",
            "Zürcher Ärztehaus AG",
            "buchhaltung@aerztehaus.example",
            "Ωmega Łódź rollout",
            "Expense 79: Übernachtung",
            "9,876.00",
            "1,601.40",
            "12,277.40",
            "Total CHF",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
        // Paged, each page numbered out of the whole.
        let pages: usize = text
            .split("Page 1 of ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no page numbers in:\n{text}"));
        assert!(pages >= 2);
        assert!(text.contains(&format!("Page {pages} of {pages}")));
    }
    // A member, a token of another tenant, no token: nothing.
    let (status, _, bytes) = app.get_raw(&t.host, Some(&member), &path).await;
    assert_eq!(status, 403);
    assert!(!bytes.starts_with(b"%PDF"));
    let (status, _, bytes) = app.get_raw(&t.host, Some(&globex_admin), &path).await;
    assert_eq!(status, 401);
    assert!(!bytes.starts_with(b"%PDF"));
    let (status, _, _) = app.get_raw(&t.host, None, &path).await;
    assert_eq!(status, 401);
    // The same path at Globex's host is Globex's business: it has no such invoice.
    let (status, _, _) = app.get_raw(&globex.host, Some(&globex_admin), &path).await;
    assert_eq!(status, 404);
    let (status, _, _) = app.get_raw(&t.host, Some(&admin), "/invoices/nothing.pdf").await;
    assert_eq!(status, 404);
}

/// The first part of an .eml whose headers mention `content_type`, decoded from base64.
fn attachment(eml: &str, content_type: &str) -> Vec<u8> {
    use base64::Engine as _;
    let start = eml
        .find(&format!("Content-Type: {content_type}"))
        .expect("the attachment");
    let part = &eml[start..];
    let body_start = part
        .find("\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| part.find("\n\n").map(|i| i + 2))
        .unwrap();
    let body: String = part[body_start..]
        .lines()
        .take_while(|l| !l.starts_with("--"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .unwrap()
}

#[tokio::test]
async fn an_issued_invoice_is_emailed_with_its_pdf_from_its_own_tenant() {
    let app = TestApp::new().await;
    let mut sent = Vec::new();
    for schema in ["acme", "globex"] {
        let t = app.create_tenant(schema).await;
        let admin = app.login_admin(&t).await;
        let (client, projects) = client_with_projects(&app, &t, &admin, &["150"]).await;
        app.as_user(&t, &admin).log(&projects[0], "2026-10-05", 120).await;
        approve_all(&app, schema).await;
        let draft = app
            .gql(
                &t.host,
                Some(&admin),
                &create_invoice_query(),
                json!({ "i": { "clientId": client, "from": "2026-10-01", "to": "2026-10-31" } }),
            )
            .await["createInvoice"]["id"]
            .clone();
        const SEND: &str = "mutation($id: ID!) { sendInvoice(id: $id) { sentAt } }";
        // A draft is not sent, and nothing more is queued.
        let (code, _) = app
            .gql_error(&t.host, Some(&admin), SEND, json!({ "id": draft }))
            .await;
        assert_eq!(code, "CONFLICT");
        assert_eq!(
            app.count("SELECT count(*) AS n FROM public.jobs WHERE payload->>'template' = 'invoice_sent'")
                .await,
            sent.len() as i64
        );
        let number = app
            .gql(&t.host, Some(&admin), &issue_query(), json!({ "id": draft }))
            .await["issueInvoice"]["number"]
            .as_str()
            .unwrap()
            .to_owned();
        let done = app.gql(&t.host, Some(&admin), SEND, json!({ "id": draft })).await;
        assert!(done["sendInvoice"]["sentAt"].is_string());
        sent.push((t, number));
    }
    let emails = crate::common::drain_outbox(&app).await;
    assert_eq!(emails.len(), 2);
    for (t, number) in &sent {
        let eml = emails
            .iter()
            .find(|e| e.contains(&format!("Subject: Invoice {number} from Company {}", t.schema)))
            .unwrap_or_else(|| panic!("no email for {}: {emails:?}", t.schema));
        let host = t.host.as_str();
        assert!(eml.contains(&format!("no-reply@{host}")), "{eml}");
        assert!(eml.contains("ap@globex.example"), "{eml}");
        let other = if t.schema == "acme" { "globex" } else { "acme" };
        assert!(!eml.contains(&format!("no-reply@{other}")), "{eml}");
        assert!(eml.contains(&format!("filename=\"{number}.pdf\"")), "{eml}");
        let pdf = attachment(eml, "application/pdf");
        assert!(pdf.starts_with(b"%PDF-"));
        let text = pdf_text(&pdf);
        assert!(
            text.contains(number.as_str()) && text.contains("300.00"),
            "{text}"
        );
        assert!(text.contains(&format!("Company {}", t.schema)), "{text}");
    }
}
