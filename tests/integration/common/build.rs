//! What most tests make first (clients, projects, tasks, members, time entries, settings),
//! made through the API as a signed-in user would. Each builder returns the new row's id
//! and fails the test when the API refuses.

use serde_json::{Value, json};

use super::{TestApp, TestTenant};

/// Makes things on one tenant with one user's token: `app.as_user(&tenant, &token)`.
pub struct Builder<'a> {
    app: &'a TestApp,
    tenant: &'a TestTenant,
    token: &'a str,
}

/// The catalog most time tests book against: client "Globex", project "Website" (code WEB,
/// at the rate given) and its task "Build".
pub struct Catalog {
    pub client: Value,
    pub project: Value,
    pub task: Value,
}

impl TestApp {
    pub fn as_user<'a>(&'a self, tenant: &'a TestTenant, token: &'a str) -> Builder<'a> {
        Builder {
            app: self,
            tenant,
            token,
        }
    }
}

impl Builder<'_> {
    /// Runs `mutation { <name>(input: $i) { id } }` and returns the id.
    async fn create(&self, name: &str, input_type: &str, input: Value) -> Value {
        let query = format!("mutation($i: {input_type}!) {{ {name}(input: $i) {{ id }} }}");
        let data = self
            .app
            .gql(&self.tenant.host, Some(self.token), &query, json!({ "i": input }))
            .await;
        let id = data[name]["id"].clone();
        assert!(id.is_string(), "{name} gave no id: {data}");
        id
    }

    pub async fn client(&self, name: &str) -> Value {
        self.client_with(json!({ "name": name })).await
    }

    /// A client from a whole `CreateClientInput`.
    pub async fn client_with(&self, input: Value) -> Value {
        self.create("createClient", "CreateClientInput", input).await
    }

    /// A project of `client` at `rate` an hour, without a code.
    pub async fn project(&self, client: &Value, name: &str, rate: &str) -> Value {
        self.project_with(json!({ "clientId": client, "name": name, "hourlyRate": rate }))
            .await
    }

    /// A project from a whole `CreateProjectInput`.
    pub async fn project_with(&self, input: Value) -> Value {
        self.create("createProject", "CreateProjectInput", input).await
    }

    pub async fn task(&self, project: &Value, name: &str) -> Value {
        self.create(
            "createTask",
            "CreateTaskInput",
            json!({ "projectId": project, "name": name }),
        )
        .await
    }

    /// Makes `user` a member of `project`, at `rate` when given (else the project's).
    pub async fn member(&self, project: &Value, user: &Value, rate: Option<&str>) {
        self.create(
            "addProjectMember",
            "AddProjectMemberInput",
            json!({ "projectId": project, "userId": user, "hourlyRate": rate }),
        )
        .await;
    }

    /// See [`Catalog`].
    pub async fn catalog(&self, rate: &str) -> Catalog {
        let client = self.client("Globex").await;
        let project = self
            .project_with(json!({ "clientId": client, "name": "Website", "code": "WEB", "hourlyRate": rate }))
            .await;
        let task = self.task(&project, "Build").await;
        Catalog {
            client,
            project,
            task,
        }
    }

    /// A time entry from a whole `CreateTimeEntryInput`.
    pub async fn entry(&self, input: Value) -> Value {
        self.create("createTimeEntry", "CreateTimeEntryInput", input)
            .await
    }

    /// `minutes` on `project` on `date`, noted "work".
    pub async fn log(&self, project: &Value, date: &str, minutes: i64) -> Value {
        self.entry(json!({ "projectId": project, "date": date, "minutes": minutes, "notes": "work" }))
            .await
    }

    /// Changes the tenant's settings (the token must be an admin's).
    pub async fn settings(&self, input: Value) {
        self.app
            .gql(
                &self.tenant.host,
                Some(self.token),
                "mutation($i: UpdateTenantSettingsInput!) { updateTenantSettings(input: $i) { overridden } }",
                json!({ "i": input }),
            )
            .await;
    }

    /// The id of the token's user.
    pub async fn my_id(&self) -> Value {
        self.app
            .gql(&self.tenant.host, Some(self.token), "{ me { id } }", json!({}))
            .await["me"]["id"]
            .clone()
    }
}
