//! Clients, projects, tasks and members through the API, against PostgreSQL.

use crate::common::{TestApp, assert_error, assert_error_for};
use serde_json::json;

const CREATE_CLIENT: &str = "mutation($i: CreateClientInput!) { createClient(input: $i) { id name } }";
const CREATE_PROJECT: &str =
    "mutation($i: CreateProjectInput!) { createProject(input: $i) { id name code client { name } } }";
const CREATE_TASK: &str =
    "mutation($i: CreateTaskInput!) { createTask(input: $i) { id name project { name } } }";

#[tokio::test]
async fn names_are_unique_ignoring_case_where_the_product_says() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;

    let globex = app.as_user(&t, &admin).client("Globex").await;
    let (_, error) = app
        .gql_error(
            &t.host,
            Some(&admin),
            CREATE_CLIENT,
            json!({ "i": { "name": "  GLOBEX " } }),
        )
        .await;
    assert_error(&error, "CONFLICT", Some("input.name"));
    assert_eq!(app.count("SELECT count(*) AS n FROM acme.clients").await, 1);

    // Project names are unique within a client, ignoring case; codes across the tenant.
    let initech = app.as_user(&t, &admin).client("Initech").await;
    let website = app
        .as_user(&t, &admin)
        .project_with(
            json!({ "clientId": globex, "name": "Website", "code": "GLX-WEB", "hourlyRate": "950.00" }),
        )
        .await;
    let dup = json!({ "i": { "clientId": globex, "name": "WEBSITE" } });
    let (_, error) = app.gql_error(&t.host, Some(&admin), CREATE_PROJECT, dup).await;
    assert_error(&error, "CONFLICT", Some("input.name"));
    app.as_user(&t, &admin)
        .project(&initech, "website", "950.00")
        .await;
    let dup_code = json!({ "i": { "clientId": initech, "name": "Portal", "code": "glx-web" } });
    let (_, error) = app
        .gql_error(&t.host, Some(&admin), CREATE_PROJECT, dup_code)
        .await;
    assert_error(&error, "CONFLICT", Some("input.code"));
    assert_eq!(app.count("SELECT count(*) AS n FROM acme.projects").await, 2);

    // Task names are unique within a project, ignoring case.
    app.gql(
        &t.host,
        Some(&admin),
        CREATE_TASK,
        json!({ "i": { "projectId": website, "name": "Design" } }),
    )
    .await;
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&admin),
            CREATE_TASK,
            json!({ "i": { "projectId": website, "name": "design" } }),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    assert_eq!(app.count("SELECT count(*) AS n FROM acme.tasks").await, 1);

    // Renaming into a taken name is refused too, and changes nothing.
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&admin),
            "mutation($id: ID!) { updateClient(id: $id, input: {name: \"globex\"}) { name } }",
            json!({ "id": initech }),
        )
        .await;
    assert_eq!(code, "CONFLICT");

    // Lookups by name ignore case and keep the casing typed.
    let found = app
        .gql(
            &t.host,
            Some(&admin),
            "{ projects(filter: {name: \"WEBSITE\"}) { edges { node { name client { name } } } } }",
            json!({}),
        )
        .await;
    let names: Vec<(&str, &str)> = found["projects"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["name"].as_str().unwrap(),
                e["node"]["client"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [("Website", "Globex"), ("website", "Initech")]);
}

#[tokio::test]
async fn members_read_the_catalog_but_cannot_change_it() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let member = app.create_user(&t, &admin, "m@acme.example", "MEMBER").await;
    let manager = app.create_user(&t, &admin, "boss@acme.example", "MANAGER").await;
    let globex = app.as_user(&t, &manager).client("Globex").await;

    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&member),
            CREATE_CLIENT,
            json!({ "i": { "name": "Hooli" } }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&member),
            CREATE_PROJECT,
            json!({ "i": { "clientId": globex, "name": "Sneaky" } }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    assert_eq!(app.count("SELECT count(*) AS n FROM acme.clients").await, 1);
    assert_eq!(app.count("SELECT count(*) AS n FROM acme.projects").await, 0);

    let listed = app
        .gql(
            &t.host,
            Some(&member),
            "{ clients { edges { node { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["clients"]["edges"][0]["node"]["name"], "Globex");
    let (code, _) = app
        .gql_error(
            &t.host,
            None,
            "{ clients { edges { node { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "UNAUTHENTICATED");
}

#[tokio::test]
async fn bad_catalog_input_is_refused_with_its_field() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let globex = app.as_user(&t, &admin).client("Globex").await;
    let cases = [
        (json!({ "clientId": globex, "name": "  " }), "input.name"),
        (
            json!({ "clientId": globex, "name": "P", "hourlyRate": "-1" }),
            "input.hourlyRate",
        ),
        (
            json!({ "clientId": globex, "name": "P", "hourlyRate": "1.00001" }),
            "input.hourlyRate",
        ),
        (
            json!({ "clientId": globex, "name": "P", "budgetHours": "0" }),
            "input.budgetHours",
        ),
        (
            json!({ "clientId": globex, "name": "P", "code": "has space" }),
            "input.code",
        ),
        (
            json!({ "clientId": "Q2xpZW50Ojk5OTk", "name": "P" }),
            "input.clientId",
        ),
        (json!({ "clientId": "VXNlcjox", "name": "P" }), "input.clientId"),
    ];
    for (input, field) in cases {
        let (_, error) = app
            .gql_error(&t.host, Some(&admin), CREATE_PROJECT, json!({ "i": input }))
            .await;
        assert_error_for(&input, &error, "BAD_USER_INPUT", Some(field));
    }
    assert_eq!(app.count("SELECT count(*) AS n FROM acme.projects").await, 0);
    let (_, error) = app
        .gql_error(
            &t.host,
            Some(&admin),
            CREATE_CLIENT,
            json!({ "i": { "name": "X", "billingEmail": "nope" } }),
        )
        .await;
    assert_error(&error, "BAD_USER_INPUT", Some("input.billingEmail"));
}

#[tokio::test]
async fn projects_update_archive_and_carry_members_with_rates() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let users = app
        .gql(
            &t.host,
            Some(&admin),
            "{ users(filter: {search: \"dev@\"}) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let dev = users["users"]["edges"][0]["node"]["id"].clone();
    let globex = app.as_user(&t, &admin).client("Globex").await;
    let website = app
        .as_user(&t, &admin)
        .project(&globex, "Website", "950.00")
        .await;

    let updated = app
        .gql(
            &t.host,
            Some(&admin),
            "mutation($id: ID!) { updateProject(id: $id, input: {hourlyRate: \"333.33\", budgetHours: \"120.5\", code: \"WEB\", billable: false}) { hourlyRate budgetHours code billable } }",
            json!({ "id": website }),
        )
        .await;
    assert_eq!(
        updated["updateProject"],
        json!({ "hourlyRate": "333.33", "budgetHours": "120.5", "code": "WEB", "billable": false })
    );
    let cleared = app
        .gql(
            &t.host,
            Some(&admin),
            "mutation($id: ID!) { updateProject(id: $id, input: {code: null}) { code hourlyRate } }",
            json!({ "id": website }),
        )
        .await;
    assert_eq!(
        cleared["updateProject"],
        json!({ "code": null, "hourlyRate": "333.33" })
    );

    let added = app
        .gql(
            &t.host,
            Some(&admin),
            "mutation($p: ID!, $u: ID!) { addProjectMember(input: {projectId: $p, userId: $u, hourlyRate: \"400\"}) { members { hourlyRate user { email } } } }",
            json!({ "p": website, "u": dev }),
        )
        .await;
    assert_eq!(
        added["addProjectMember"]["members"],
        json!([{ "hourlyRate": "400", "user": { "email": "dev@acme.example" } }])
    );

    app.gql(
        &t.host,
        Some(&admin),
        "mutation($id: ID!) { archiveProject(id: $id) { archived } }",
        json!({ "id": website }),
    )
    .await;
    let listed = app
        .gql(
            &t.host,
            Some(&admin),
            "{ projects { edges { node { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["projects"]["edges"], json!([]));
    let all = app
        .gql(
            &t.host,
            Some(&admin),
            "{ projects(filter: {includeArchived: true}) { edges { node { name archived } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        all["projects"]["edges"][0]["node"],
        json!({ "name": "Website", "archived": true })
    );
    let node = app
        .gql(
            &t.host,
            Some(&admin),
            "query($id: ID!) { node(id: $id) { ... on Project { name } } }",
            json!({ "id": website }),
        )
        .await;
    assert_eq!(node["node"]["name"], "Website");
}

#[tokio::test]
async fn a_page_of_projects_with_relations_costs_the_same_statements_for_5_or_50() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let dev_token = app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let me = app.as_user(&t, &dev_token).my_id().await;
    let build = app.as_user(&t, &admin);
    for c in 0..10 {
        let client_id = build.client(&format!("Client {c}")).await;
        for p in 0..6 {
            let project_id = build.project(&client_id, &format!("Project {p}"), "950.00").await;
            build.task(&project_id, "Build").await;
            build.member(&project_id, &me, None).await;
        }
    }
    let query = |n: usize| {
        format!(
            "{{ projects(first: {n}) {{ edges {{ node {{ name client {{ name }} tasks {{ name project {{ code }} }} members {{ user {{ email }} }} }} }} }} }}"
        )
    };
    // Warm the actor cache, so every run counts the same work.
    app.execute_counted(&t, &admin, &query(1)).await;
    let (five, few) = app.execute_counted(&t, &admin, &query(5)).await;
    let (page, many) = app.execute_counted(&t, &admin, &query(60)).await;
    assert_eq!(five["projects"]["edges"].as_array().unwrap().len(), 5);
    let edges = page["projects"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 60);
    assert_eq!(edges[59]["node"]["client"]["name"], "Client 9");
    assert_eq!(edges[59]["node"]["tasks"][0]["name"], "Build");
    assert_eq!(
        edges[59]["node"]["members"][0]["user"]["email"],
        "dev@acme.example"
    );
    assert_eq!(few, many, "statements must not grow with the rows returned");
    // BEGIN with the tenant path, the page, clients, tasks, members, users, COMMIT.
    assert_eq!(many, 7);
}

/// Pages of clients and of users, written directly and through the resolvers (a fragment
/// on the Node interface sends a page to them): the same answer, page after page, for an
/// admin and a member; a member sees no client's billing email either way.
#[tokio::test]
async fn pages_of_clients_and_users_written_directly_answer_as_their_resolvers_do() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let member = app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let _ = app.as_user(&t, &admin).catalog("100").await;
    app.exec(
        "UPDATE acme.clients SET billing_email = 'ap@globex.example';
         INSERT INTO acme.clients (name, archived) VALUES ('Initech', false), (E'Umbrella \"U\" \\\\ \\n', true);
         INSERT INTO acme.users (email, name, role, active) VALUES ('old@acme.example', 'Zoë 東京', 'MANAGER', false)",
    )
    .await;
    let pages = app
        .state
        .services
        .get::<crowdminder::graphql::support::PageStats>();
    let counts = || {
        (
            AtomicU64::load(&pages.lists_direct, Ordering::Relaxed),
            AtomicU64::load(&pages.lists_general, Ordering::Relaxed),
        )
    };
    let clients = "clients(first: 2, after: $a, filter: {includeArchived: true}) { __typename \
        edges { __typename cursor node { __typename id name billingEmail archived createdAt again: name EXTRA } } \
        nodes { id ... on Client { name } } pageInfo { hasPreviousPage hasNextPage startCursor endCursor } }";
    let users = "users(first: 2, after: $a) { edges { cursor node { __typename id email name role active \
        createdAt updatedAt EXTRA } } nodes { email } pageInfo { hasNextPage endCursor } }";
    for (list, who, token, rows) in [
        (clients, "admin", &admin, 3),
        (clients, "member", &member, 3),
        (users, "admin", &admin, 3),
    ] {
        let name = list.split('(').next().unwrap();
        let direct = format!("query($a: String) {{ {} }}", list.replace("EXTRA", ""));
        let general = format!(
            "query($a: String) {{ {} }}",
            list.replace("EXTRA", "... on Node { id }")
        );
        let pages = app
            .pages_alike(&t.host, token, name, (&direct, &general), counts)
            .await;
        let nodes: Vec<&serde_json::Value> = pages
            .iter()
            .flat_map(|p| p[name]["edges"].as_array().unwrap())
            .map(|e| &e["node"])
            .collect();
        if who == "member" {
            assert!(nodes.iter().all(|n| n["billingEmail"].is_null()), "{nodes:?}");
        }
        assert_eq!(nodes.len(), rows, "{name}, {who} pages through every row");
    }
    // What the pages said, checked by hand.
    let page = |token: &str| {
        let query = format!("query($a: String) {{ {} }}", clients.replace("EXTRA", ""));
        let query = query.replace("first: 2", "first: 5");
        let host = t.host.clone();
        let token = token.to_owned();
        let app = &app;
        async move { app.gql(&host, Some(&token), &query, json!({ "a": null })).await }
    };
    let admin_page = page(&admin).await;
    let edges = admin_page["clients"]["edges"].as_array().unwrap();
    assert_eq!(edges[0]["node"]["billingEmail"], "ap@globex.example");
    assert_eq!(edges[0]["node"]["__typename"], "Client");
    assert_eq!(edges[2]["node"]["name"], "Umbrella \"U\" \\ \n");
    assert_eq!(edges[2]["node"]["archived"], true);
    assert_eq!(admin_page["clients"]["__typename"], "ClientConnection");
    assert_eq!(admin_page["clients"]["nodes"][1]["name"], "Initech");
    let member_page = page(&member).await;
    assert_eq!(
        member_page["clients"]["edges"][0]["node"]["billingEmail"],
        serde_json::Value::Null
    );
    let users = app
        .gql(
            &t.host,
            Some(&admin),
            "{ users(first: 5) { nodes { name role active } } }",
            json!({}),
        )
        .await;
    let old = &users["users"]["nodes"][2];
    assert_eq!(
        old,
        &json!({ "name": "Zoë 東京", "role": "MANAGER", "active": false })
    );
}
