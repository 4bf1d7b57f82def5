//! A stand-in Kubernetes API server for reconcile tests: a kube `Client` over a tower-test mock
//! service, answered by a small in-memory store that keeps objects as JSON, so that a test can
//! run one reconcile and read back every request it made, in order, and which of them wrote.
//!
//! It knows only what the controllers ask: server-side apply (create, or merge into what is
//! stored), status apply, JSON merge patches, get, list by label selector (whole or metadata
//! only), delete with a uid precondition, and Events. A request "writes" when it changed what
//! is stored, as a real API server would move the object's resourceVersion.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock;

/// One request the client made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// `apply`, `status`, `patch`, `get`, `list`, `delete` or `create`, then the resource's
    /// plural and, if any, the object's name: `apply pods/example-etcd-faf13de3-1`.
    pub what: String,
    /// Whether it changed what the server stores.
    pub wrote: bool,
}

/// What the server stores, by collection (`group/plural` and namespace), then name.
#[derive(Default)]
struct Store {
    objects: BTreeMap<(String, String), BTreeMap<String, Value>>,
    calls: Vec<Call>,
    next_uid: u64,
    resource_version: u64,
}

/// The server half: what a test seeds and reads back.
#[derive(Clone, Default)]
pub struct ApiServer {
    store: Arc<Mutex<Store>>,
}

/// Where a request points: its collection, and the object and subresource if any.
struct Target {
    collection: (String, String),
    plural: String,
    name: Option<String>,
    status: bool,
}

impl ApiServer {
    /// A client whose every request this server answers, and the server.
    pub fn start() -> (Client, ApiServer) {
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let server = ApiServer::default();
        tokio::spawn(server.clone().serve(handle));
        (Client::new(service, "default"), server)
    }

    /// Stores `object` as it is (a test's starting state), with a uid if it has none.
    pub fn insert(&self, group: &str, plural: &str, mut object: Value) {
        let mut store = self.lock();
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if object["metadata"]["uid"].is_null() {
            store.next_uid += 1;
            object["metadata"]["uid"] = json!(format!("uid-{}", store.next_uid));
        }
        store
            .objects
            .entry((format!("{group}/{plural}"), namespace))
            .or_default()
            .insert(name, object);
    }

    /// Stores a typed object (see [`ApiServer::insert`]) and returns it as stored, uid included.
    pub fn insert_object<K>(&self, object: &K) -> K
    where
        K: kube::Resource<DynamicType = ()> + serde::Serialize + serde::de::DeserializeOwned,
    {
        let group = K::group(&());
        let plural = K::plural(&());
        let mut value = serde_json::to_value(object).unwrap_or_default();
        value["apiVersion"] = json!(K::api_version(&()));
        value["kind"] = json!(K::kind(&()));
        self.insert(&group, &plural, value);
        self.object_like(object)
            .unwrap_or_else(|| panic!("{} stored", K::kind(&())))
    }

    /// The stored object of `object`'s kind, namespace and name, typed, if any.
    pub fn object_like<K>(&self, object: &K) -> Option<K>
    where
        K: kube::Resource<DynamicType = ()> + serde::de::DeserializeOwned,
    {
        let meta = object.meta();
        let value = self.get(
            &K::group(&()),
            &K::plural(&()),
            meta.namespace.as_deref().unwrap_or("default"),
            meta.name.as_deref().unwrap_or_default(),
        )?;
        serde_json::from_value(value).ok()
    }

    /// The stored object, if any.
    pub fn get(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&(format!("{group}/{plural}"), namespace.to_string()))
            .and_then(|c| c.get(name))
            .cloned()
    }

    /// Forgets the stored object of `object`'s kind, namespace and name (gone as garbage
    /// collection or a finalizer's end would make it), and returns it if there was one.
    pub fn remove_like<K>(&self, object: &K) -> Option<Value>
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let meta = object.meta();
        let collection = (
            format!("{}/{}", K::group(&()), K::plural(&())),
            meta.namespace.clone().unwrap_or_else(|| "default".into()),
        );
        self.lock()
            .objects
            .get_mut(&collection)?
            .remove(meta.name.as_deref().unwrap_or_default())
    }

    /// Every request so far, in order, and forgets them.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.lock().calls)
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn serve(self, mut handle: mock::Handle<Request<Body>, Response<Body>>) {
        while let Some((request, reply)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let body = body.collect_bytes().await.unwrap_or_default();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let (code, answer) = self.answer(&parts, body);
            let response = Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&answer).unwrap_or_default()))
                .unwrap_or_else(|_| Response::new(Body::empty()));
            reply.send_response(response);
        }
    }

    fn answer(&self, parts: &http::request::Parts, body: Value) -> (StatusCode, Value) {
        let Some(target) = parse(parts.uri.path()) else {
            return failure(StatusCode::NOT_FOUND, "NotFound", parts.uri.path());
        };
        let query = parts.uri.query().unwrap_or_default();
        let metadata_only = parts
            .headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("as=PartialObjectMetadata"));
        let content_type = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut store = self.lock();
        let verb = match (&parts.method, target.name.is_some()) {
            (&Method::GET, false) => "list",
            (&Method::GET, true) => "get",
            (&Method::POST, _) => "create",
            (&Method::DELETE, _) => "delete",
            (&Method::PATCH, _) if target.status => "status",
            (&Method::PATCH, _) if content_type.contains("apply-patch") => "apply",
            _ => "patch",
        };
        let what = match &target.name {
            Some(name) => format!("{verb} {}/{name}", target.plural),
            None => format!("{verb} {}", target.plural),
        };
        let (code, answer, wrote) = match verb {
            "list" => {
                let list = store.list(&target.collection, &label_selector(query), metadata_only);
                (StatusCode::OK, list, false)
            }
            "get" => match store.find(&target) {
                Some(o) => (StatusCode::OK, o.clone(), false),
                None => not_found(&what),
            },
            "delete" => store.delete(&target, &what, &body),
            "status" => match store.find(&target).cloned() {
                None => not_found(&what),
                Some(mut object) => {
                    let before = object.clone();
                    object["status"] = body["status"].clone();
                    let wrote = object != before;
                    let object = store.save(&target, object, wrote, false);
                    (StatusCode::OK, object, wrote)
                }
            },
            "apply" | "patch" | "create" => {
                let current = store.find(&target).cloned();
                let (object, wrote) = match current {
                    None => (body, true),
                    Some(mut object) => {
                        let before = object.clone();
                        merge(&mut object, &body);
                        let wrote = object != before;
                        (object, wrote)
                    }
                };
                let spec_changed = wrote;
                let (object, wrote) = match verb {
                    "apply" => applied_by(object, &field_manager(query), wrote),
                    _ => (object, wrote),
                };
                let object = store.save(&target, object, wrote, spec_changed);
                (StatusCode::OK, object, wrote)
            }
            _ => not_found(&what),
        };
        store.calls.push(Call { what, wrote });
        (code, answer)
    }
}

impl Store {
    /// The collection's objects that `selector` matches, whole or as metadata only.
    fn list(
        &self,
        collection: &(String, String),
        selector: &[(String, Option<String>)],
        metadata_only: bool,
    ) -> Value {
        let items: Vec<Value> = self
            .objects
            .get(collection)
            .into_iter()
            .flat_map(|c| c.values())
            .filter(|o| matches(&o["metadata"]["labels"], selector))
            .map(|o| {
                if metadata_only {
                    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                           "metadata": o["metadata"]})
                } else {
                    o.clone()
                }
            })
            .collect();
        let rv = self.resource_version.to_string();
        json!({"apiVersion": "v1", "kind": "List",
               "metadata": {"resourceVersion": rv}, "items": items})
    }

    /// Deletes the target, unless the body's uid precondition names another object (409).
    fn delete(&mut self, target: &Target, what: &str, body: &Value) -> (StatusCode, Value, bool) {
        let precondition = body["preconditions"]["uid"].as_str().map(str::to_string);
        match self.find(target).map(|o| o["metadata"]["uid"].clone()) {
            None => not_found(what),
            Some(uid) if precondition.is_some_and(|p| json!(p) != uid) => {
                let (code, status) = failure(StatusCode::CONFLICT, "Conflict", what);
                (code, status, false)
            }
            Some(_) => {
                self.remove(target);
                let done = json!({"apiVersion": "v1", "kind": "Status",
                                  "status": "Success", "code": 200});
                (StatusCode::OK, done, true)
            }
        }
    }

    fn find(&self, target: &Target) -> Option<&Value> {
        self.objects
            .get(&target.collection)?
            .get(target.name.as_deref()?)
    }

    fn remove(&mut self, target: &Target) {
        if let (Some(c), Some(name)) = (
            self.objects.get_mut(&target.collection),
            target.name.as_deref(),
        ) {
            c.remove(name);
        }
    }

    /// Stores `object` under the target's name (or its own), giving a new object a uid and
    /// generation and a written one a new resourceVersion (and generation when its spec moved).
    fn save(&mut self, target: &Target, mut object: Value, wrote: bool, bump: bool) -> Value {
        let name = target
            .name
            .clone()
            .or_else(|| object["metadata"]["name"].as_str().map(str::to_string))
            .unwrap_or_default();
        if object["metadata"]["uid"].is_null() {
            self.next_uid += 1;
            object["metadata"]["uid"] = json!(format!("uid-{}", self.next_uid));
            object["metadata"]["generation"] = json!(1);
        } else if bump {
            let generation = object["metadata"]["generation"].as_i64().unwrap_or(0);
            object["metadata"]["generation"] = json!(generation + 1);
        }
        if wrote {
            self.resource_version += 1;
            object["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
        }
        object["metadata"]["name"] = json!(name);
        object["metadata"]["namespace"] = json!(target.collection.1);
        self.objects
            .entry(target.collection.clone())
            .or_default()
            .insert(name, object.clone());
        object
    }
}

/// `/api/v1/namespaces/NS/PLURAL[/NAME[/status]]` or the same under `/apis/GROUP/VERSION`.
fn parse(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let (namespace, plural, rest) = match rest {
        ["namespaces", namespace, plural, rest @ ..] => (*namespace, *plural, rest),
        [plural, rest @ ..] => ("", *plural, rest),
        [] => return None,
    };
    Some(Target {
        collection: (format!("{group}/{plural}"), namespace.to_string()),
        plural: plural.to_string(),
        name: rest.first().map(|n| n.to_string()),
        status: rest.get(1) == Some(&"status"),
    })
}

/// The `labelSelector` of a query: `key=value` pairs and bare keys, ANDed.
/// The `fieldManager` of a request's query.
fn field_manager(query: &str) -> String {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("fieldManager="))
        .unwrap_or_default()
        .to_string()
}

/// Records in `metadata.managedFields` that `manager` has applied to `object` (as the API
/// server does; the fields themselves are not tracked), which is a write the first time.
fn applied_by(mut object: Value, manager: &str, wrote: bool) -> (Value, bool) {
    let entry = json!({"manager": manager, "operation": "Apply"});
    let fields = &mut object["metadata"]["managedFields"];
    if !fields.is_array() {
        *fields = json!([]);
    }
    match fields.as_array_mut() {
        Some(entries) if !entries.contains(&entry) => {
            entries.push(entry);
            (object, true)
        }
        _ => (object, wrote),
    }
}

fn label_selector(query: &str) -> Vec<(String, Option<String>)> {
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("labelSelector="))
        .flat_map(|s| {
            let s = s
                .replace("%2C", ",")
                .replace("%3D", "=")
                .replace("%2F", "/");
            s.split(',')
                .filter(|t| !t.is_empty())
                .map(|t| match t.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (t.to_string(), None),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn matches(labels: &Value, selector: &[(String, Option<String>)]) -> bool {
    selector.iter().all(|(key, value)| match value {
        Some(v) => labels[key].as_str() == Some(v.as_str()),
        None => !labels[key].is_null(),
    })
}

/// A JSON merge of `patch` into `target` (objects merged key by key, `null` removes, the rest
/// replaced), which is what server-side apply amounts to for one field manager.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn failure(code: StatusCode, reason: &str, what: &str) -> (StatusCode, Value) {
    let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                        "reason": reason, "code": code.as_u16(), "message": what});
    (code, status)
}

fn not_found(what: &str) -> (StatusCode, Value, bool) {
    let (code, status) = failure(StatusCode::NOT_FOUND, "NotFound", what);
    (code, status, false)
}
