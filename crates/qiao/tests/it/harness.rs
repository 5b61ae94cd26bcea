//! A real server per test and a small HTTP client.

use std::time::Duration;

use qiao::Config;
use qiao_store::testing::TestDb;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestServer {
    pub url: String,
    pub setup_token: Option<String>,
    pub db: TestDb,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), qiao_domain::Error>>>,
}

/// Cheap password hashing: tests create many accounts.
pub fn test_config(db: &TestDb) -> Config {
    let mut c = Config::defaults();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.database = qiao::config::Secret(db.url.clone());
    if let Some(dir) = db.dir() {
        c.data_dir = dir.to_path_buf();
    }
    c.password_memory_kib = 64;
    c.password_iterations = 1;
    c
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(TestDb::sqlite(), |_| {}).await
    }

    pub async fn start_with(db: TestDb, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = test_config(&db);
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let task = tokio::spawn(qiao::serve_with(
            config,
            listener,
            async move {
                let _ = stopped.await;
            },
            move |ready| {
                let _ = ready_tx.send(ready);
            },
        ));
        let ready = tokio::time::timeout(Duration::from_secs(20), ready_rx)
            .await
            .expect("the server did not start in time")
            .expect("the server failed to start");
        TestServer {
            url: format!("http://{}", ready.addr),
            setup_token: ready.setup_token,
            db,
            shutdown: Some(stop),
            task: Some(task),
        }
    }

    /// Graceful stop; returns the database so a test can start again on it.
    pub async fn stop(mut self) -> TestDb {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
        std::mem::replace(&mut self.db, TestDb::sqlite())
    }

    pub fn anon(&self) -> Api {
        Api::new(&self.url, Auth::None)
    }

    /// Completes setup and returns the owner's client (bearer).
    pub async fn owner(&self) -> Api {
        let token = self.setup_token.clone().expect("setup token");
        let r = self
            .anon()
            .post(
                "/api/v1/setup",
                json!({"token": token, "username": "owner", "display_name": "Owner 所有者", "password": "owner-password", "mode": "bearer"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        Api::new(&self.url, Auth::Bearer(r.body["token"].as_str().unwrap().to_owned()))
    }

    /// Signs in with a password and returns a bearer client.
    pub async fn sign_in(&self, login: &str, password: &str) -> Api {
        let r = self
            .anon()
            .post("/api/v1/auth/sign-in", json!({"login": login, "password": password, "mode": "bearer"}))
            .await;
        assert_eq!(r.status, 200, "sign-in of {login}: {}", r.body);
        Api::new(&self.url, Auth::Bearer(r.body["token"].as_str().unwrap().to_owned()))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
    }
}

#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Bearer(String),
    /// Browser style: the session cookie and the CSRF token.
    Cookie {
        session: String,
        csrf: String,
    },
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub auth: Auth,
    http: reqwest::Client,
}

/// A response: status, JSON body (`Null` when empty or not JSON) and headers.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The value of a cookie the response sets.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers.get_all("set-cookie").iter().find_map(|v| {
            let (k, rest) = v.to_str().ok()?.split_once('=')?;
            (k == name).then(|| rest.split(';').next().unwrap_or_default().to_owned())
        })
    }
}

impl Api {
    pub fn new(base: &str, auth: Auth) -> Api {
        Api { base: base.to_owned(), auth, http: reqwest::Client::new() }
    }

    pub fn with_auth(&self, auth: Auth) -> Api {
        Api { auth, ..self.clone() }
    }

    pub fn token(&self) -> &str {
        match &self.auth {
            Auth::Bearer(t) => t,
            _ => panic!("not a bearer client"),
        }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        match &self.auth {
            Auth::None => {}
            Auth::Bearer(t) => rb = rb.bearer_auth(t),
            Auth::Cookie { session, csrf } => {
                rb = rb
                    .header("cookie", format!("qiao_session={session}; qiao_csrf={csrf}"))
                    .header("x-csrf-token", csrf)
            }
        }
        rb
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        let res = rb.send().await.expect("request failed");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp { status, body, headers }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut rb = self.request(method, path);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(rb).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn post_empty(&self, path: &str) -> Resp {
        self.call(Method::POST, path, None).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn put_empty(&self, path: &str) -> Resp {
        self.call(Method::PUT, path, None).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates a person (as this client, an administrator) with a known password, then
    /// signs them in. Returns their id and client.
    pub async fn create_user(&self, srv: &TestServer, username: &str, role: &str, dept: Option<&str>) -> (String, Api) {
        let mut body = json!({"username": username, "display_name": format!("User {username}"), "role": role, "password": format!("{username}-password")});
        if let Some(d) = dept {
            body["primary_department_id"] = json!(d);
        }
        let r = self.post("/api/v1/users", body).await;
        assert_eq!(r.status, 201, "create {username}: {}", r.body);
        let id = r.body["user"]["id"].as_str().unwrap().to_owned();
        (id, srv.sign_in(username, &format!("{username}-password")).await)
    }

    /// Creates a department under `parent` (root when `None`); returns its id.
    pub async fn create_department(&self, name: &str, parent: Option<&str>) -> String {
        let mut body = json!({"name": name});
        if let Some(p) = parent {
            body["parent_id"] = json!(p);
        }
        let r = self.post("/api/v1/departments", body).await;
        assert_eq!(r.status, 201, "create department {name}: {}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }
}

/// Asserts an error response: status, code, and the standard body.
#[track_caller]
pub fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!((r.status, r.code()), (status, code), "unexpected response: {}", r.body);
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(r.body["request_id"].as_str().is_some_and(|m| !m.is_empty()));
}
