//! Tests of the in-process API server (tests/support/apiserver), driven only
//! through kube's own clients: `Api<K>`, `Discovery`, `watcher`, `Controller`,
//! `events::Recorder` and `wait::await_condition`.

mod support;

use axum::http;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::core::{GroupVersionKind, Status};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use kube::{Client, CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use support::apiserver::{ApiError, ApiServer, Fault};

/// A small custom resource for the tests.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema, PartialEq)]
#[kube(
    group = "test.watchkeeper.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wd"
)]
pub struct WidgetSpec {
    /// Size; the test validator rejects negative sizes.
    pub size: i64,
    /// Optional colour, for two-manager apply tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// Status written through the status subresource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WidgetStatus {
    /// Generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Free-form phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

const WAIT: Duration = Duration::from_secs(20);

fn api_error(err: kube::Error) -> Box<Status> {
    match err {
        kube::Error::Api(status) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn cm(name: &str, labels: &[(&str, &str)], data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn widget(name: &str, size: i64) -> Widget {
    Widget::new(name, WidgetSpec { size, color: None })
}

async fn with_widgets() -> (ApiServer, Client) {
    let server = ApiServer::builder().crd(Widget::crd()).start().await;
    let client = server.client();
    (server, client)
}

async fn next_event<S: futures::Stream + Unpin>(stream: &mut S) -> S::Item {
    timeout("watcher event", stream.next())
        .await
        .expect("the stream continues")
}

async fn timeout<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[tokio::test]
async fn discovery_lists_builtins_and_served_crds() {
    let server = ApiServer::start().await;
    let client = server.client();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &Widget::crd())
        .await
        .unwrap();
    let established = timeout(
        "CRD established",
        await_condition(
            crds.clone(),
            "widgets.test.watchkeeper.dev",
            conditions::is_crd_established(),
        ),
    )
    .await
    .unwrap();
    assert!(established.is_some());

    for aggregated in [false, true] {
        let discovery = kube::Discovery::new(client.clone());
        let discovery = if aggregated {
            discovery.run_aggregated().await.unwrap()
        } else {
            discovery.run().await.unwrap()
        };
        let (cm_res, cm_caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"))
            .expect("ConfigMap discovered");
        assert_eq!(cm_res.plural, "configmaps");
        assert_eq!(cm_caps.scope, kube::discovery::Scope::Namespaced);
        let (dep, _) = discovery
            .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
            .expect("Deployment discovered");
        assert_eq!(dep.plural, "deployments");
        let (w, caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk(
                "test.watchkeeper.dev",
                "v1",
                "Widget",
            ))
            .expect("Widget discovered after its CRD was created");
        assert_eq!(w.plural, "widgets");
        assert!(
            caps.subresources
                .iter()
                .any(|(r, _)| r.plural == "widgets/status" || r.plural == "status"),
            "status subresource discovered (aggregated: {aggregated}): {:?}",
            caps.subresources
                .iter()
                .map(|(r, _)| r.plural.clone())
                .collect::<Vec<_>>()
        );
        let (ns, ns_caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"))
            .expect("Namespace discovered");
        assert_eq!(ns.plural, "namespaces");
        assert_eq!(ns_caps.scope, kube::discovery::Scope::Cluster);
    }

    // Deleting the CRD stops serving the resource.
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    crds.delete("widgets.test.watchkeeper.dev", &DeleteParams::default())
        .await
        .unwrap();
    let err = api_error(widgets.get("w").await.unwrap_err());
    assert_eq!(err.code, 404);
}

#[tokio::test]
async fn configmap_crud_conflicts_and_selectors() {
    let server = ApiServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let pp = PostParams::default();

    let created = api
        .create(&pp, &cm("a", &[("app", "x")], &[("k", "1")]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));
    let rv1 = created.resource_version().unwrap();

    let dup = api_error(api.create(&pp, &cm("a", &[], &[])).await.unwrap_err());
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));

    api.create(&pp, &cm("b", &[("app", "y")], &[]))
        .await
        .unwrap();
    api.create(&pp, &cm("c", &[("app", "x"), ("tier", "web")], &[]))
        .await
        .unwrap();
    let mut generated = cm("", &[], &[]);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let generated = api.create(&pp, &generated).await.unwrap();
    let generated_name = generated.name_any();
    assert!(generated_name.starts_with("gen-") && generated_name.len() > 4);

    let names = |list: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        list.items.iter().map(|c| c.name_any()).collect()
    };
    let all = api.list(&ListParams::default()).await.unwrap();
    assert!(all.metadata.resource_version.is_some());
    assert_eq!(all.items.len(), 4);
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app=x"))
                .await
                .unwrap()
        ),
        ["a", "c"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app!=x"))
                .await
                .unwrap()
        ),
        ["b", generated_name.as_str()]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app in (y,z)"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app,!tier"))
                .await
                .unwrap()
        ),
        ["a", "b"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=c"))
                .await
                .unwrap()
        ),
        ["c"]
    );

    // Other namespaces are separate; listing across namespaces sees all.
    let other: Api<ConfigMap> = Api::namespaced(server.client(), "other");
    other.create(&pp, &cm("a", &[], &[])).await.unwrap();
    let everywhere: Api<ConfigMap> = Api::all(server.client());
    assert_eq!(
        everywhere
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        5
    );

    // Replace with the current resourceVersion works, with a stale one conflicts.
    let mut fresh = api.get("a").await.unwrap();
    fresh.data = Some(BTreeMap::from([("k".to_string(), "2".to_string())]));
    let replaced = api.replace("a", &pp, &fresh).await.unwrap();
    assert_ne!(replaced.resource_version().unwrap(), rv1);
    let mut stale = created.clone();
    stale.data = Some(BTreeMap::from([("k".to_string(), "3".to_string())]));
    let conflict = api_error(api.replace("a", &pp, &stale).await.unwrap_err());
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert_eq!(api.get("a").await.unwrap().data.unwrap()["k"], "2");

    // A write that changes nothing keeps the resourceVersion.
    let same = api.replace("a", &pp, &replaced).await.unwrap();
    assert_eq!(same.resource_version(), replaced.resource_version());

    let missing = api_error(api.get("nope").await.unwrap_err());
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));

    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(api.get("a").await.unwrap_err()).code, 404);
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );
    assert!(server.request_count("create", "configmaps") >= 5);
}

#[tokio::test]
async fn list_pages_with_limit_and_continue() {
    let server = ApiServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for i in 0..7 {
        api.create(&PostParams::default(), &cm(&format!("cm-{i}"), &[], &[]))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(3);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|c| c.name_any()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..7).map(|i| format!("cm-{i}")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn patches_and_generation_on_a_deployment() {
    let server = ApiServer::start().await;
    let api: Api<Deployment> = Api::namespaced(server.client(), "default");
    let dep: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}
        },
        "status": {"replicas": 99}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &dep).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.status.is_none(), "status is dropped on create");

    // Merge patch of spec bumps generation.
    let p = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(p.spec.replicas, Some(3));
    assert_eq!(p.metadata.generation, Some(2));

    // Metadata-only change: no bump.
    let p = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.generation, Some(2));
    assert_eq!(p.labels()["team"], "a");

    // JSON patch.
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "add", "path": "/metadata/annotations", "value": {"note": "x"}}
    ]))
    .unwrap();
    let p = api
        .patch("web", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(p.spec.replicas, Some(5));
    assert_eq!(p.annotations()["note"], "x");
    assert_eq!(p.metadata.generation, Some(3));

    // A failing JSON patch test op is rejected and changes nothing.
    let bad: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/spec/replicas", "value": 42}]))
            .unwrap();
    let err = api_error(
        api.patch("web", &PatchParams::default(), &Patch::<()>::Json(bad))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);

    // Strategic merge patch (merge semantics).
    let p = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"paused": true}})),
        )
        .await
        .unwrap();
    assert_eq!(p.spec.paused, Some(true));
    assert_eq!(p.spec.replicas, Some(5));
    // Containers merge by name; `$patch: delete` removes one; finalizers are a union.
    let smp = |patch: Value| {
        let api = api.clone();
        async move {
            api.patch("web", &PatchParams::default(), &Patch::Strategic(patch))
                .await
                .unwrap()
        }
    };
    let containers = |d: &Deployment| -> Vec<(String, String)> {
        let spec = d.spec.template.spec.as_ref().unwrap();
        spec.containers
            .iter()
            .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
            .collect()
    };
    let p = smp(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}})).await;
    assert_eq!(containers(&p), [("c".to_string(), "nginx:2".to_string())]);
    assert_eq!(
        p.metadata.generation,
        Some(5),
        "a strategic spec change bumps it"
    );
    let p = smp(json!({"spec": {"template": {"spec": {"containers": [{"name": "d", "image": "sidecar:1"}]}}}})).await;
    assert_eq!(containers(&p).len(), 2);
    let p = smp(json!({"spec": {"template": {"spec": {"containers": [{"name": "d", "$patch": "delete"}]}}}})).await;
    assert_eq!(containers(&p), [("c".to_string(), "nginx:2".to_string())]);
    smp(json!({"metadata": {"finalizers": ["a/one"]}})).await;
    let p = smp(json!({"metadata": {"finalizers": ["b/two"]}})).await;
    assert_eq!(p.finalizers(), ["a/one", "b/two"]);
    let p = smp(json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/one"]}})).await;
    assert_eq!(p.finalizers(), ["b/two"]);
    let p = smp(json!({"metadata": {"finalizers": null}})).await;
    assert!(p.finalizers().is_empty());

    // A patch carrying a stale resourceVersion conflicts.
    let err = api_error(
        api.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": created.resource_version()}, "spec": {"replicas": 7}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 409);

    // Writes to the main resource ignore status; the status subresource changes only status.
    let p = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert!(p.status.is_none());
    let generation_before = p.metadata.generation;
    let p = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 4}, "spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(p.status.as_ref().unwrap().replicas, Some(4));
    assert_eq!(p.spec.replicas, Some(5));
    assert_eq!(
        p.metadata.generation, generation_before,
        "status writes keep the generation"
    );
}

#[tokio::test]
async fn custom_resource_status_subresource_and_generation() {
    let (_server, client) = with_widgets().await;
    let api: Api<Widget> = Api::namespaced(client, "default");
    let mut w = widget("w", 1);
    w.status = Some(WidgetStatus {
        observed_generation: Some(7),
        phase: Some("Ignored".into()),
    });
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    assert!(created.status.is_none(), "status is dropped on create");
    assert_eq!(created.metadata.generation, Some(1));

    let status = json!({"apiVersion": "test.watchkeeper.dev/v1", "kind": "Widget",
                        "status": {"observedGeneration": 1, "phase": "Ready"}});
    let s = api
        .patch_status(
            "w",
            &PatchParams::apply("ctl").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    assert_eq!(s.status.as_ref().unwrap().phase.as_deref(), Some("Ready"));
    assert_eq!(s.metadata.generation, Some(1));

    // Replace of the main resource with a different status keeps the stored one;
    // the spec change bumps the generation.
    let mut current = api.get("w").await.unwrap();
    current.spec.size = 2;
    current.status = Some(WidgetStatus {
        observed_generation: Some(100),
        phase: Some("Hacked".into()),
    });
    let r = api
        .replace("w", &PostParams::default(), &current)
        .await
        .unwrap();
    assert_eq!(r.spec.size, 2);
    assert_eq!(r.metadata.generation, Some(2));
    assert_eq!(r.status.as_ref().unwrap().phase.as_deref(), Some("Ready"));

    // replace_status changes only status.
    let mut for_status = api.get("w").await.unwrap();
    for_status.spec.size = 50;
    for_status.status = Some(WidgetStatus {
        observed_generation: Some(2),
        phase: Some("Done".into()),
    });
    let r = api
        .replace_status("w", &PostParams::default(), &for_status)
        .await
        .unwrap();
    assert_eq!(r.spec.size, 2);
    assert_eq!(r.status.as_ref().unwrap().phase.as_deref(), Some("Done"));
    assert_eq!(r.metadata.generation, Some(2));

    // Custom resources allow no update without a resourceVersion.
    let mut unconditional = api.get("w").await.unwrap();
    unconditional.metadata.resource_version = None;
    let err = api_error(
        api.replace("w", &PostParams::default(), &unconditional)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));

    // Custom resources do not take strategic merge patches.
    let err = api_error(
        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": 3}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 415);

    // The status of a kind without a status subresource is not a subresource.
    let cms: Api<ConfigMap> = Api::namespaced(api.clone().into_client(), "default");
    cms.create(&PostParams::default(), &cm("plain", &[], &[]))
        .await
        .unwrap();
    let err = api_error(
        cms.patch_status(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 404);
}

#[tokio::test]
async fn server_side_apply_with_two_managers() {
    let (server, client) = with_widgets().await;
    let api: Api<Widget> = Api::namespaced(client, "default");
    let apply = |m: &str| PatchParams::apply(m);

    // Apply creates the object.
    let a1 = json!({"apiVersion": "test.watchkeeper.dev/v1", "kind": "Widget",
                    "metadata": {"name": "w", "labels": {"owner": "a", "keep": "yes"}},
                    "spec": {"size": 1}});
    let w = api
        .patch("w", &apply("alice"), &Patch::Apply(&a1))
        .await
        .unwrap();
    assert_eq!(w.spec.size, 1);
    assert_eq!(w.metadata.generation, Some(1));
    let managers: Vec<String> = w
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            format!(
                "{}/{}",
                m.manager.as_deref().unwrap_or(""),
                m.operation.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(managers, ["alice/Apply"]);

    // A second manager sets a different field: no conflict, both fields kept.
    let b1 = json!({"apiVersion": "test.watchkeeper.dev/v1", "kind": "Widget",
                    "metadata": {"name": "w"}, "spec": {"color": "red"}});
    let w = api
        .patch("w", &apply("bob"), &Patch::Apply(&b1))
        .await
        .unwrap();
    assert_eq!((w.spec.size, w.spec.color.as_deref()), (1, Some("red")));
    assert_eq!(w.metadata.generation, Some(2));
    assert_eq!(w.metadata.managed_fields.as_ref().map(Vec::len), Some(2));

    // Bob changing alice's field conflicts, naming the manager and the field.
    let b2 = json!({"apiVersion": "test.watchkeeper.dev/v1", "kind": "Widget",
                    "metadata": {"name": "w"}, "spec": {"color": "red", "size": 2}});
    let err = api_error(
        api.patch("w", &apply("bob"), &Patch::Apply(&b2))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message.contains("\"alice\"") && err.message.contains(".spec.size"),
        "{}",
        err.message
    );
    assert_eq!(api.get("w").await.unwrap().spec.size, 1);

    // Applying the same value is shared ownership, not a conflict.
    let b_same = json!({"apiVersion": "test.watchkeeper.dev/v1", "kind": "Widget",
                        "metadata": {"name": "w"}, "spec": {"color": "red", "size": 1}});
    let w = api
        .patch("w", &apply("bob"), &Patch::Apply(&b_same))
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(2));

    // With force, bob takes the field.
    let w = api
        .patch("w", &apply("bob").force(), &Patch::Apply(&b2))
        .await
        .unwrap();
    assert_eq!(w.spec.size, 2);
    assert_eq!(w.metadata.generation, Some(3));

    // Alice stops applying size (bob owns it now: it stays) and the "keep" label
    // (only she owned it: it is removed).
    let a2 = json!({"apiVersion": "test.watchkeeper.dev/v1", "kind": "Widget",
                    "metadata": {"name": "w", "labels": {"owner": "a"}}, "spec": {}});
    let w = api
        .patch("w", &apply("alice"), &Patch::Apply(&a2))
        .await
        .unwrap();
    assert_eq!(w.spec.size, 2);
    assert_eq!(w.labels().get("keep"), None);
    assert_eq!(w.labels()["owner"], "a");

    // Bob stops applying color: removed.
    let b3 = json!({"apiVersion": "test.watchkeeper.dev/v1", "kind": "Widget",
                    "metadata": {"name": "w"}, "spec": {"size": 2}});
    let w = api
        .patch("w", &apply("bob"), &Patch::Apply(&b3))
        .await
        .unwrap();
    assert_eq!(w.spec.color, None);

    // A merge patch by a third manager takes ownership (operation Update), so a
    // later apply of a different value by bob conflicts.
    let w = api
        .patch(
            "w",
            &PatchParams {
                field_manager: Some("carol".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"size": 3}})),
        )
        .await
        .unwrap();
    assert!(
        w.metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some("carol")
                && m.operation.as_deref() == Some("Update"))
    );
    let b4 = json!({"apiVersion": "test.watchkeeper.dev/v1", "kind": "Widget",
                    "metadata": {"name": "w"}, "spec": {"size": 4}});
    let err = api_error(
        api.patch("w", &apply("bob"), &Patch::Apply(&b4))
            .await
            .unwrap_err(),
    );
    assert!(err.message.contains("\"carol\""), "{}", err.message);

    // Re-applying an identical config is a no-op: same resourceVersion.
    let before = api.get("w").await.unwrap();
    let again = api
        .patch("w", &apply("alice"), &Patch::Apply(&a2))
        .await
        .unwrap();
    assert_eq!(again.resource_version(), before.resource_version());

    // The store holds carol's value.
    let raw = server
        .object("test.watchkeeper.dev", "widgets", "default", "w")
        .unwrap();
    assert_eq!(raw["spec"]["size"], 3);
}

#[tokio::test]
async fn apply_owns_finalizers_as_a_set() {
    let server = ApiServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let cfg = |fins: &[&str]| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "f", "finalizers": fins}})
    };
    api.patch(
        "f",
        &PatchParams::apply("one"),
        &Patch::Apply(cfg(&["a.example/one"])),
    )
    .await
    .unwrap();
    api.patch(
        "f",
        &PatchParams::apply("two"),
        &Patch::Apply(cfg(&["b.example/two"])),
    )
    .await
    .unwrap();
    let got = api.get("f").await.unwrap();
    assert_eq!(got.finalizers(), ["a.example/one", "b.example/two"]);
    let got = api
        .patch("f", &PatchParams::apply("one"), &Patch::Apply(cfg(&[])))
        .await
        .unwrap();
    assert_eq!(got.finalizers(), ["b.example/two"]);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (_server, client) = with_widgets().await;
    let api: Api<Widget> = Api::namespaced(client, "default");
    let mut w = widget("fin", 1);
    w.metadata.finalizers = Some(vec!["test.watchkeeper.dev/cleanup".into()]);
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    let uid = created.uid().unwrap();

    let deleted = api.delete("fin", &DeleteParams::default()).await.unwrap();
    let pending = deleted
        .left()
        .expect("object still present while finalizers remain");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert_eq!(pending.metadata.generation, Some(2));
    let still = api.get("fin").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());

    // No finalizer can be added once deletion started.
    let err = api_error(
        api.patch(
            "fin",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"finalizers": ["test.watchkeeper.dev/cleanup", "late/one"]}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(err.message.contains("late/one"), "{}", err.message);

    // Spec writes are still possible; deletionTimestamp cannot be removed by a client.
    let p = api
        .patch(
            "fin",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"deletionTimestamp": null}})),
        )
        .await
        .unwrap();
    assert!(p.metadata.deletion_timestamp.is_some());

    api.patch(
        "fin",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    timeout(
        "deletion",
        await_condition(api.clone(), "fin", conditions::is_deleted(&uid)),
    )
    .await
    .unwrap();
    assert_eq!(api_error(api.get("fin").await.unwrap_err()).code, 404);

    // Delete preconditions.
    let created = api
        .create(&PostParams::default(), &widget("pre", 1))
        .await
        .unwrap();
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("wrong".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    assert_eq!(
        api_error(api.delete("pre", &dp).await.unwrap_err()).code,
        409
    );
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: created.uid(),
            resource_version: created.resource_version(),
        }),
        ..Default::default()
    };
    api.delete("pre", &dp).await.unwrap();
    assert_eq!(api_error(api.get("pre").await.unwrap_err()).code, 404);
}

fn owner_ref_to(dep: &Deployment) -> OwnerReference {
    dep.controller_owner_ref(&())
        .expect("deployment has name and uid")
}

fn small_deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn garbage_collection_of_owned_objects() {
    let server = ApiServer::start().await;
    let client = server.client();
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // Background: the owner goes at once, the dependent soon after.
    let owner = deps
        .create(&PostParams::default(), &small_deployment("owner"))
        .await
        .unwrap();
    let mut child = cm("child", &[], &[]);
    child.metadata.owner_references = Some(vec![owner_ref_to(&owner)]);
    let child = cms.create(&PostParams::default(), &child).await.unwrap();
    deps.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    timeout(
        "dependent collected",
        await_condition(
            cms.clone(),
            "child",
            conditions::is_deleted(&child.uid().unwrap()),
        ),
    )
    .await
    .unwrap();

    // Foreground: the owner waits (deletionTimestamp + foregroundDeletion) until
    // its dependents are gone, and a dependent with a finalizer holds it.
    let owner = deps
        .create(&PostParams::default(), &small_deployment("fg"))
        .await
        .unwrap();
    let mut held = cm("held", &[], &[]);
    held.metadata.owner_references = Some(vec![owner_ref_to(&owner)]);
    held.metadata.finalizers = Some(vec!["test/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    deps.delete("fg", &DeleteParams::foreground())
        .await
        .unwrap();
    let waiting = timeout(
        "dependent marked for deletion",
        await_condition(cms.clone(), "held", |c: Option<&ConfigMap>| {
            c.is_some_and(|c| c.metadata.deletion_timestamp.is_some())
        }),
    )
    .await
    .unwrap();
    assert!(waiting.is_some());
    let fg = deps.get("fg").await.unwrap();
    assert!(fg.finalizers().iter().any(|f| f == "foregroundDeletion"));
    assert!(fg.metadata.deletion_timestamp.is_some());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    timeout(
        "owner deleted after its dependents",
        await_condition(
            deps.clone(),
            "fg",
            conditions::is_deleted(&owner.uid().unwrap()),
        ),
    )
    .await
    .unwrap();

    // Orphan: the dependent stays, without the ownerReference.
    let owner = deps
        .create(&PostParams::default(), &small_deployment("orph"))
        .await
        .unwrap();
    let mut kept = cm("kept", &[], &[]);
    kept.metadata.owner_references = Some(vec![owner_ref_to(&owner)]);
    cms.create(&PostParams::default(), &kept).await.unwrap();
    deps.delete("orph", &DeleteParams::orphan()).await.unwrap();
    timeout(
        "orphaning owner deleted",
        await_condition(
            deps.clone(),
            "orph",
            conditions::is_deleted(&owner.uid().unwrap()),
        ),
    )
    .await
    .unwrap();
    let kept = cms.get("kept").await.unwrap();
    assert!(kept.owner_references().is_empty());
}

#[tokio::test]
async fn watcher_sees_changes_and_recovers_from_410() {
    let server = ApiServer::builder()
        .bookmark_interval(Duration::from_millis(200))
        .start()
        .await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &cm("pre", &[], &[]))
        .await
        .unwrap();

    let mut events = Box::pin(watcher(
        api.clone(),
        watcher::Config::default().labels("w=1"),
    ));
    // Initial list: nothing matches the selector yet.
    assert!(matches!(
        next_event(&mut events).await.unwrap(),
        watcher::Event::Init
    ));
    assert!(matches!(
        next_event(&mut events).await.unwrap(),
        watcher::Event::InitDone
    ));

    api.create(
        &PostParams::default(),
        &cm("x", &[("w", "1")], &[("v", "1")]),
    )
    .await
    .unwrap();
    match next_event(&mut events).await.unwrap() {
        watcher::Event::Apply(c) => assert_eq!(c.name_any(), "x"),
        other => panic!("expected Apply(x), got {other:?}"),
    }
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    match next_event(&mut events).await.unwrap() {
        watcher::Event::Apply(c) => assert_eq!(c.data.unwrap()["v"], "2"),
        other => panic!("expected Apply(x v=2), got {other:?}"),
    }
    // Leaving the selector looks like a deletion to this watch.
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"w": "0"}}})),
    )
    .await
    .unwrap();
    match next_event(&mut events).await.unwrap() {
        watcher::Event::Delete(c) => assert_eq!(c.name_any(), "x"),
        other => panic!("expected Delete(x), got {other:?}"),
    }
    // Coming back into the selector looks like a creation.
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"w": "1"}}})),
    )
    .await
    .unwrap();
    match next_event(&mut events).await.unwrap() {
        watcher::Event::Apply(c) => assert_eq!(c.labels()["w"], "1"),
        other => panic!("expected Apply(x) again, got {other:?}"),
    }

    // All watches expire: the watcher reports the 410 and lists again.
    server.expire_watches();
    let mut saw_error = false;
    loop {
        match next_event(&mut events).await {
            Err(watcher::Error::WatchError(e)) => {
                assert_eq!(e.code, 410);
                saw_error = true;
            }
            Err(other) => panic!("unexpected watcher error {other:?}"),
            Ok(watcher::Event::Init) => break,
            Ok(other) => panic!("unexpected event before relist: {other:?}"),
        }
    }
    assert!(saw_error);
    // The relist brings the current state again.
    match next_event(&mut events).await.unwrap() {
        watcher::Event::InitApply(c) => assert_eq!(c.name_any(), "x"),
        other => panic!("expected InitApply(x) in the relist, got {other:?}"),
    }
    assert!(matches!(
        next_event(&mut events).await.unwrap(),
        watcher::Event::InitDone
    ));
    api.create(&PostParams::default(), &cm("y", &[("w", "1")], &[]))
        .await
        .unwrap();
    match next_event(&mut events).await.unwrap() {
        watcher::Event::Apply(c) => assert_eq!(c.name_any(), "y"),
        other => panic!("expected Apply(y) after recovery, got {other:?}"),
    }
    api.delete("y", &DeleteParams::default()).await.unwrap();
    match next_event(&mut events).await.unwrap() {
        watcher::Event::Delete(c) => assert_eq!(c.name_any(), "y"),
        other => panic!("expected Delete(y), got {other:?}"),
    }
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events() {
    let server = ApiServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for name in ["s1", "s2"] {
        api.create(&PostParams::default(), &cm(name, &[], &[]))
            .await
            .unwrap();
    }
    let mut events = Box::pin(watcher(
        api.clone(),
        watcher::Config::default().streaming_lists(),
    ));
    let mut initial = Vec::new();
    loop {
        match timeout("streaming list", events.next())
            .await
            .unwrap()
            .unwrap()
        {
            watcher::Event::Init => {}
            watcher::Event::InitApply(c) => initial.push(c.name_any()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(initial, ["s1", "s2"]);
    api.create(&PostParams::default(), &cm("s3", &[], &[]))
        .await
        .unwrap();
    match timeout("s3", events.next()).await.unwrap().unwrap() {
        watcher::Event::Apply(c) => assert_eq!(c.name_any(), "s3"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn raw_watch_bookmarks_history_and_expiry() {
    let server = ApiServer::builder().history_limit(5).start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let first = api
        .create(&PostParams::default(), &cm("h0", &[], &[]))
        .await
        .unwrap();
    let first_rv = first.resource_version().unwrap();

    // Resuming from a recent resourceVersion replays what happened since.
    let second = api
        .create(&PostParams::default(), &cm("h1", &[], &[]))
        .await
        .unwrap();
    let stream = api
        .watch(
            &WatchParams::default().disable_bookmarks().timeout(2),
            &first_rv,
        )
        .await
        .unwrap();
    let events: Vec<_> = timeout("watch", stream.take(1).collect::<Vec<_>>()).await;
    match &events[0] {
        Ok(WatchEvent::Added(c)) => {
            assert_eq!(c.name_any(), "h1");
            assert_eq!(c.resource_version(), second.resource_version());
        }
        other => panic!("expected ADDED h1, got {other:?}"),
    }

    // Bookmarks come at the start when allowed.
    let stream = api
        .watch(
            &WatchParams::default().timeout(2),
            &second.resource_version().unwrap(),
        )
        .await
        .unwrap();
    let events: Vec<_> = timeout("bookmark", stream.take(1).collect::<Vec<_>>()).await;
    assert!(
        matches!(events[0], Ok(WatchEvent::Bookmark(_))),
        "{:?}",
        events[0].as_ref().err()
    );

    // Push the first version out of the 5-event history: 410 Expired.
    for i in 2..10 {
        api.create(&PostParams::default(), &cm(&format!("h{i}"), &[], &[]))
            .await
            .unwrap();
    }
    let stream = api
        .watch(
            &WatchParams::default().disable_bookmarks().timeout(2),
            &first_rv,
        )
        .await
        .unwrap();
    let events: Vec<_> = timeout("410", stream.collect::<Vec<_>>()).await;
    match &events[..] {
        [Ok(WatchEvent::Error(e))] => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected a single 410 error, got {other:?}"),
    }

    // An exact list at a compacted version is 410 as well; the current one is fine.
    let exact = |rv: &str| {
        ListParams::default()
            .at(rv)
            .matching(kube::api::VersionMatch::Exact)
    };
    let err = api_error(api.list(&exact(&first_rv)).await.unwrap_err());
    assert_eq!(err.code, 410);
    let now = server.resource_version().to_string();
    assert_eq!(api.list(&exact(&now)).await.unwrap().items.len(), 10);

    // timeoutSeconds ends a quiet watch.
    let stream = api
        .watch(
            &WatchParams::default().disable_bookmarks().timeout(1),
            &server.resource_version().to_string(),
        )
        .await
        .unwrap();
    let events: Vec<_> = timeout("watch timeout", stream.collect::<Vec<_>>()).await;
    assert!(events.is_empty());
}

#[tokio::test]
async fn many_objects_through_one_watch() {
    let server = ApiServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let stream = api
        .watch(&WatchParams::default().disable_bookmarks(), "0")
        .await
        .unwrap();
    let writer = api.clone();
    let n = 300;
    let produce = tokio::spawn(async move {
        for i in 0..n {
            writer
                .create(&PostParams::default(), &cm(&format!("m{i}"), &[], &[]))
                .await
                .unwrap();
        }
    });
    let added = timeout(
        "all events",
        stream
            .try_filter(|e| futures::future::ready(matches!(e, WatchEvent::Added(_))))
            .take(n)
            .try_collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    produce.await.unwrap();
    assert_eq!(added.len(), n);
}

#[tokio::test]
async fn validator_rejects_invalid_custom_resources() {
    let validator: support::apiserver::Validator =
        Arc::new(|crd: &CustomResourceDefinition, obj: &Value| {
            assert_eq!(crd.spec.names.kind, "Widget");
            match obj.pointer("/spec/size").and_then(Value::as_i64) {
                Some(s) if s < 0 => vec![format!("spec.size: Invalid value: {s}: must be >= 0")],
                Some(_) => vec![],
                None => vec!["spec.size: Required value".to_string()],
            }
        });
    let server = ApiServer::builder()
        .crd(Widget::crd())
        .validator(validator)
        .start()
        .await;
    let api: Api<Widget> = Api::namespaced(server.client(), "default");
    let err = api_error(
        api.create(&PostParams::default(), &widget("bad", -1))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message.contains("spec.size: Invalid value: -1"),
        "{}",
        err.message
    );
    assert!(
        server
            .object("test.watchkeeper.dev", "widgets", "default", "bad")
            .is_none()
    );

    api.create(&PostParams::default(), &widget("ok", 1))
        .await
        .unwrap();
    let err = api_error(
        api.patch(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": -5}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    let apply = json!({"apiVersion": "test.watchkeeper.dev/v1", "kind": "Widget", "metadata": {"name": "ok"}, "spec": {"size": -2}});
    let err = api_error(
        api.patch(
            "ok",
            &PatchParams::apply("m").force(),
            &Patch::Apply(&apply),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert_eq!(api.get("ok").await.unwrap().spec.size, 1);
    // Built-in kinds are not validated.
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    cms.create(&PostParams::default(), &cm("free", &[], &[]))
        .await
        .unwrap();
}

#[tokio::test]
async fn recorder_publishes_and_aggregates_events() {
    let server = ApiServer::start().await;
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let target = cms
        .create(&PostParams::default(), &cm("subject", &[], &[]))
        .await
        .unwrap();
    let reference: ObjectReference = target.object_ref(&());
    let recorder = Recorder::new(client.clone(), Reporter::from("test-controller"));
    let event = Event {
        type_: EventType::Warning,
        reason: "InvalidSpec".into(),
        note: Some("spec.size: must be >= 0".into()),
        action: "Validate".into(),
        secondary: None,
    };
    recorder.publish(&event, &reference).await.unwrap();
    recorder.publish(&event, &reference).await.unwrap();
    let events: Api<K8sEvent> = Api::namespaced(client, "default");
    let list = events.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let ev = &list.items[0];
    assert_eq!(ev.reason.as_deref(), Some("InvalidSpec"));
    assert_eq!(
        ev.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("subject")
    );
    assert_eq!(ev.series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(server.request_count("create", "events"), 1);
    assert_eq!(server.request_count("patch", "events"), 1);
}

#[tokio::test]
async fn lease_updates_conflict_on_stale_versions() {
    let server = ApiServer::start().await;
    let leases: Api<Lease> = Api::namespaced(server.client(), "default");
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "leader"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}
    }))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut by_a = created.clone();
    by_a.spec.as_mut().unwrap().lease_transitions = Some(1);
    let mut by_b = created.clone();
    by_b.spec.as_mut().unwrap().holder_identity = Some("b".into());
    leases
        .replace("leader", &PostParams::default(), &by_a)
        .await
        .unwrap();
    let err = api_error(
        leases
            .replace("leader", &PostParams::default(), &by_b)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert_eq!(
        leases
            .get("leader")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("a")
    );
}

#[tokio::test]
async fn controller_reconciles_against_the_server() {
    let (server, client) = with_widgets().await;
    let api: Api<Widget> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &widget("c1", 1))
        .await
        .unwrap();

    async fn reconcile(w: Arc<Widget>, api: Arc<Api<Widget>>) -> Result<Action, kube::Error> {
        let status = json!({
            "apiVersion": "test.watchkeeper.dev/v1", "kind": "Widget",
            "status": {"observedGeneration": w.metadata.generation, "phase": format!("size-{}", w.spec.size)}
        });
        api.patch_status(
            &w.name_any(),
            &PatchParams::apply("widget-controller").force(),
            &Patch::Apply(&status),
        )
        .await?;
        Ok(Action::await_change())
    }
    fn error_policy(_: Arc<Widget>, _: &kube::Error, _: Arc<Api<Widget>>) -> Action {
        Action::requeue(Duration::from_millis(100))
    }
    let ctl = Controller::new(api.clone(), watcher::Config::default())
        .run(reconcile, error_policy, Arc::new(api.clone()))
        .for_each(|_| futures::future::ready(()));
    let handle = tokio::spawn(ctl);

    let observed = |generation: i64, phase: &'static str| {
        move |w: Option<&Widget>| {
            w.and_then(|w| w.status.as_ref()).is_some_and(|s| {
                s.observed_generation == Some(generation) && s.phase.as_deref() == Some(phase)
            })
        }
    };
    timeout(
        "first reconcile",
        await_condition(api.clone(), "c1", observed(1, "size-1")),
    )
    .await
    .unwrap();
    api.patch(
        "c1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"size": 2}})),
    )
    .await
    .unwrap();
    timeout(
        "reconcile of generation 2",
        await_condition(api.clone(), "c1", observed(2, "size-2")),
    )
    .await
    .unwrap();

    // An injected failure of the status write is retried by the controller.
    server.inject_fault(
        Fault::new(1, ApiError::internal("injected"))
            .verb("patch")
            .resource("widgets")
            .subresource("status"),
    );
    api.patch(
        "c1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"size": 3}})),
    )
    .await
    .unwrap();
    timeout(
        "reconcile after a failed status write",
        await_condition(api.clone(), "c1", observed(3, "size-3")),
    )
    .await
    .unwrap();
    let status_patches = server
        .requests()
        .iter()
        .filter(|r| {
            r.verb == "patch" && r.subresource == "status" && r.field_manager == "widget-controller"
        })
        .count();
    assert!(
        status_patches >= 4,
        "3 successful status writes and 1 failed: {status_patches}"
    );
    handle.abort();
}

#[tokio::test]
async fn faults_and_shutdown() {
    let server = ApiServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    // Verbs a path does not support are 405 MethodNotAllowed.
    let request = http::Request::post("/api/v1/namespaces/default/configmaps/x")
        .body(b"{}".to_vec())
        .unwrap();
    let err = api_error(server.client().request::<Value>(request).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (405, "MethodNotAllowed"));
    server.reset_requests();
    server.fail_next(2);
    assert_eq!(
        api_error(api.list(&ListParams::default()).await.unwrap_err()).code,
        500
    );
    assert_eq!(api_error(api.get("x").await.unwrap_err()).code, 500);
    assert_eq!(api_error(api.get("x").await.unwrap_err()).code, 404);
    assert_eq!(server.request_count("get", "configmaps"), 2);
    assert_eq!(server.request_count("list", "configmaps"), 1);

    let stream = api.watch(&WatchParams::default(), "0").await.unwrap();
    assert_eq!(server.open_watches(), 1);
    let url = server.url();
    let pooled = api.clone();
    server.shutdown().await;
    let events: Vec<_> = timeout("watch ends at shutdown", stream.collect::<Vec<_>>()).await;
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, Ok(WatchEvent::Added(_))))
    );
    assert!(
        pooled.get("x").await.is_err(),
        "kept-alive connections are closed too"
    );
    let fresh = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(fresh, "default");
    assert!(api.get("x").await.is_err());
}

#[tokio::test]
async fn namespaces_are_served_and_cascade() {
    let server = ApiServer::start().await;
    let client = server.client();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert!(names.contains(&"default".to_string()));
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let inside = cms
        .create(&PostParams::default(), &cm("inside", &[], &[]))
        .await
        .unwrap();
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    timeout(
        "namespace contents deleted",
        await_condition(
            cms.clone(),
            "inside",
            conditions::is_deleted(&inside.uid().unwrap()),
        ),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn unknown_fields_are_pruned_unless_strict() {
    let server = ApiServer::builder().crd(Widget::crd()).start().await;
    let api: Api<Widget> = Api::namespaced(server.client(), "default");
    let body = json!({"apiVersion": "test.watchkeeper.dev/v1", "kind": "Widget",
                      "metadata": {"name": "p", "labels": {"kept": "yes"}},
                      "spec": {"size": 1, "bogus": true}, "extra": 1});
    let w = api
        .patch("p", &PatchParams::apply("m"), &Patch::Apply(&body))
        .await
        .unwrap();
    assert_eq!(w.labels()["kept"], "yes");
    let raw = server
        .object("test.watchkeeper.dev", "widgets", "default", "p")
        .unwrap();
    assert_eq!(raw["spec"], json!({"size": 1}));
    assert!(raw.get("extra").is_none());

    // Strict: the validator sees the unknown field and rejects it.
    let validator: support::apiserver::Validator =
        Arc::new(|_crd: &CustomResourceDefinition, obj: &Value| {
            obj["spec"]
                .as_object()
                .map(|spec| {
                    spec.keys()
                        .filter(|k| !matches!(k.as_str(), "size" | "color"))
                        .map(|k| format!("spec.{k}: Unsupported value: unknown field"))
                        .collect()
                })
                .unwrap_or_default()
        });
    let strict = ApiServer::builder()
        .crd(Widget::crd())
        .validator(validator)
        .strict_field_validation()
        .start()
        .await;
    let api: Api<Widget> = Api::namespaced(strict.client(), "default");
    let err = api_error(
        api.patch("p", &PatchParams::apply("m"), &Patch::Apply(&body))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(err.message.contains("spec.bogus"), "{}", err.message);
    // An explicit fieldValidation=Ignore prunes even there.
    let mut pp = PatchParams::apply("m");
    pp.field_validation = Some(kube::api::ValidationDirective::Ignore);
    api.patch("p", &pp, &Patch::Apply(&body)).await.unwrap();
    assert_eq!(api.get("p").await.unwrap().spec.size, 1);
}

#[tokio::test]
async fn clients_are_told_apart_and_dry_run_changes_nothing() {
    let server = ApiServer::start().await;
    let a: Api<ConfigMap> = Api::namespaced(server.client_as("replica-a"), "default");
    let b: Api<ConfigMap> = Api::namespaced(server.client_as("replica-b"), "default");
    a.create(&PostParams::default(), &cm("from-a", &[], &[]))
        .await
        .unwrap();
    b.get("from-a").await.unwrap();
    let by = |who: &str| {
        server
            .requests()
            .iter()
            .filter(|r| r.client.as_deref() == Some(who))
            .map(|r| r.verb.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(by("replica-a"), ["create"]);
    assert_eq!(by("replica-b"), ["get"]);

    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let would = a.create(&dry, &cm("dry", &[], &[])).await.unwrap();
    assert_eq!(would.name_any(), "dry");
    assert_eq!(api_error(a.get("dry").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn delete_collection_and_metadata_watcher() {
    let server = ApiServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for (name, team) in [("d1", "x"), ("d2", "x"), ("d3", "y")] {
        api.create(
            &PostParams::default(),
            &cm(name, &[("team", team)], &[("big", "data")]),
        )
        .await
        .unwrap();
    }
    let meta_api: Api<kube::core::PartialObjectMeta<ConfigMap>> =
        Api::namespaced(server.client(), "default");
    let mut meta = Box::pin(watcher(
        meta_api,
        watcher::Config::default().labels("team=x"),
    ));
    let mut initial = Vec::new();
    loop {
        match next_event(&mut meta).await.unwrap() {
            watcher::Event::Init => {}
            watcher::Event::InitApply(m) => {
                let kind = m.types.as_ref().map(|t| t.kind.as_str());
                assert_eq!(kind, Some("PartialObjectMetadata"));
                initial.push(m.name_any());
            }
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(initial, ["d1", "d2"]);

    let deleted = api
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("team=x"),
        )
        .await
        .unwrap();
    let names: Vec<String> = deleted
        .left()
        .expect("a list of deleted objects")
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(names, ["d1", "d2"]);
    let mut gone = Vec::new();
    while gone.len() < 2 {
        match next_event(&mut meta).await.unwrap() {
            watcher::Event::Delete(m) => gone.push(m.name_any()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(gone, ["d1", "d2"]);
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(left, ["d3"]);
}

/// Every `*.yaml` file under `dir`, sorted.
fn yaml_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn repository_crds_and_examples_are_accepted() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let server = ApiServer::builder()
        .validator(support::apiserver::schema_validator())
        .strict_field_validation()
        .start()
        .await;
    let client = server.client();

    // The CRDs of crds/ are created through the API, as `kubectl apply -f crds/` does.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd_files = yaml_files(&root.join("crds"));
    assert_eq!(crd_files.len(), 5, "one CRD file per kind");
    for file in &crd_files {
        let text = std::fs::read_to_string(file).unwrap();
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text).unwrap();
        let name = crd.name_any();
        crds.create(&PostParams::default(), &crd)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        timeout(
            "CRD established",
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .unwrap();
    }

    // Every watchkeeper document of the examples is created and accepted.
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    let mut created = 0;
    let mut failures = Vec::new();
    for (index, file) in yaml_files(&root.join("manifests/examples"))
        .iter()
        .enumerate()
    {
        let text = std::fs::read_to_string(file).unwrap();
        let namespace = format!("example-{index}");
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = Value::deserialize(document).unwrap();
            let Some(api_version) = value["apiVersion"].as_str() else {
                continue;
            };
            if !api_version.starts_with("watchkeeper.dev/") {
                continue;
            }
            let (group, version) = api_version.split_once('/').unwrap();
            let kind = value["kind"].as_str().unwrap_or_default();
            let (resource, _) = discovery
                .resolve_gvk(&GroupVersionKind::gvk(group, version, kind))
                .unwrap_or_else(|| panic!("{kind} is served"));
            let api: Api<kube::api::DynamicObject> =
                Api::namespaced_with(client.clone(), &namespace, &resource);
            let object: kube::api::DynamicObject = serde_json::from_value(value.clone()).unwrap();
            match api.create(&PostParams::default(), &object).await {
                Ok(_) => created += 1,
                Err(e) => failures.push(format!(
                    "{}: {kind}/{}: {}",
                    file.display(),
                    object.name_any(),
                    match e {
                        kube::Error::Api(status) => status.message,
                        other => other.to_string(),
                    }
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "rejected examples (when whole specs are \"unknown field\", crds/ is stale: \
         run `watchkeeper crdgen --out-dir crds`):\n{}",
        failures.join("\n")
    );
    assert!(created >= 2, "the examples hold watchkeeper resources");
}

#[tokio::test]
async fn names_are_checked_and_schema_defaults_applied() {
    let mut crd = serde_json::to_value(Widget::crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["color"]
        ["default"] = json!("blue");
    let crd: CustomResourceDefinition = serde_json::from_value(crd).unwrap();
    let server = ApiServer::builder().crd(crd).start().await;
    let client = server.client();

    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let w = widgets
        .create(&PostParams::default(), &widget("plain", 1))
        .await
        .unwrap();
    assert_eq!(
        w.spec.color.as_deref(),
        Some("blue"),
        "schema default applied"
    );
    let mut red = widget("red", 1);
    red.spec.color = Some("red".into());
    let w = widgets.create(&PostParams::default(), &red).await.unwrap();
    assert_eq!(w.spec.color.as_deref(), Some("red"), "given values win");

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for bad in ["Upper", "under_score", "-dash", "dot."] {
        let err = api_error(
            cms.create(&PostParams::default(), &cm(bad, &[], &[]))
                .await
                .unwrap_err(),
        );
        assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"), "{bad}");
    }
    cms.create(&PostParams::default(), &cm("ok.name-1", &[], &[]))
        .await
        .unwrap();

    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let mut misnamed = Widget::crd();
    misnamed.metadata.name = Some("widgets.example.com".into());
    let err = api_error(
        crds.create(&PostParams::default(), &misnamed)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains("widgets.test.watchkeeper.dev"),
        "{}",
        err.message
    );

    let bodies: Vec<Value> = server
        .requests()
        .into_iter()
        .filter(|r| r.verb == "create" && r.resource == "widgets")
        .filter_map(|r| r.body)
        .collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["spec"]["color"], "red");
}

#[tokio::test]
async fn quiet_watches_get_periodic_bookmarks() {
    let server = ApiServer::builder()
        .bookmark_interval(Duration::from_millis(100))
        .start()
        .await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &cm("b", &[], &[]))
        .await
        .unwrap();
    let rv = server.resource_version().to_string();
    let stream = api.watch(&WatchParams::default(), &rv).await.unwrap();
    let events: Vec<_> = timeout("three bookmarks", stream.take(3).collect::<Vec<_>>()).await;
    for event in &events {
        match event {
            Ok(WatchEvent::Bookmark(b)) => assert_eq!(b.metadata.resource_version, rv),
            other => panic!("expected a bookmark, got {other:?}"),
        }
    }
}

#[test]
fn selectors_parse_and_match_like_kubernetes() {
    use support::apiserver::selectors::{FieldSelector, LabelSelector};
    let obj = json!({"metadata": {"name": "n", "namespace": "ns", "labels": {"app": "web", "tier": "front"}},
                     "involvedObject": {"name": "target"}});
    let yes = [
        "",
        "app=web",
        "app==web",
        "app!=db",
        "app in (web, db)",
        "tier notin (back)",
        "app,tier",
        "!missing",
        "app=web,tier in (front)",
    ];
    for s in yes {
        assert!(
            LabelSelector::parse(s).unwrap().matches(&obj),
            "{s:?} should match"
        );
    }
    let no = [
        "app=db",
        "app notin (web)",
        "missing",
        "!app",
        "app in (db)",
        "app=web,tier=back",
    ];
    for s in no {
        assert!(
            !LabelSelector::parse(s).unwrap().matches(&obj),
            "{s:?} should not match"
        );
    }
    assert!(LabelSelector::parse("app in web").is_err());
    let field = |s: &str| FieldSelector::parse(s).unwrap().matches(&obj);
    assert!(field("metadata.name=n,metadata.namespace=ns"));
    assert!(field("involvedObject.name=target"));
    assert!(field("metadata.name!=other"));
    assert!(!field("metadata.name=other"));
    assert!(field("spec.nodeName="));
    assert!(FieldSelector::parse("metadata.name").is_err());
}

#[test]
fn managed_fields_round_trip_through_fields_v1() {
    use support::apiserver::managed::{self, Scope, Writer};
    let writer = Writer {
        manager: "m",
        subresource: "",
        api_version: "v1",
        now: "2026-01-01T00:00:00Z",
        scope: Scope::All,
        strict: false,
        lists: Default::default(),
    };
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "x", "labels": {"a": "1"}, "finalizers": ["f/one"]},
                        "data": {"k": "v", "empty": {}}});
    let applied = managed::apply(None, &config, &writer, false).unwrap();
    let fields = &applied["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(
        fields,
        &json!({"f:metadata": {"f:labels": {"f:a": {}}, "f:finalizers": {"v:\"f/one\"": {}}},
                "f:data": {"f:k": {}, "f:empty": {}}})
    );
    let entries = managed::read_entries(&applied);
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].fields,
        managed::leaves(&config, Scope::All, &writer.lists)
    );
    // A node owned itself and through children is written with ".".
    let mut nested = applied.clone();
    let mut set = entries[0].fields.clone();
    set.insert(vec![managed::Elem::Field("data".into())]);
    let mut entry = entries[0].clone();
    entry.fields = set.clone();
    managed::write_entries(&mut nested, &[entry]);
    assert_eq!(
        nested["metadata"]["managedFields"][0]["fieldsV1"]["f:data"]["."],
        json!({})
    );
    assert_eq!(managed::read_entries(&nested)[0].fields, set);
}

#[tokio::test]
async fn apply_merges_map_lists_by_key() {
    // Widget with status.conditions declared as a map list keyed by type.
    let mut crd = serde_json::to_value(Widget::crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
        ["conditions"] = json!({
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
            "items": {"type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "string"}}}
    });
    let crd: CustomResourceDefinition = serde_json::from_value(crd).unwrap();
    let server = ApiServer::builder().crd(crd).start().await;
    let api: Api<Widget> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &widget("m", 1))
        .await
        .unwrap();
    let status = |conditions: Value| json!({"apiVersion": "test.watchkeeper.dev/v1", "kind": "Widget", "status": {"conditions": conditions}});
    let conditions = || {
        let raw = server
            .object("test.watchkeeper.dev", "widgets", "default", "m")
            .unwrap();
        raw["status"]["conditions"].clone()
    };
    let apply = |m: &str| PatchParams::apply(m);

    api.patch_status(
        "m",
        &apply("alice"),
        &Patch::Apply(status(json!([{"type": "A", "status": "True"}]))),
    )
    .await
    .unwrap();
    api.patch_status(
        "m",
        &apply("bob"),
        &Patch::Apply(status(json!([{"type": "B", "status": "False"}]))),
    )
    .await
    .unwrap();
    assert_eq!(
        conditions(),
        json!([{"type": "A", "status": "True"}, {"type": "B", "status": "False"}])
    );
    api.patch_status(
        "m",
        &apply("bob"),
        &Patch::Apply(status(json!([{"type": "B", "status": "True"}]))),
    )
    .await
    .unwrap();
    assert_eq!(
        conditions(),
        json!([{"type": "A", "status": "True"}, {"type": "B", "status": "True"}])
    );

    // Changing alice's condition conflicts, naming the item.
    let err = api_error(
        api.patch_status(
            "m",
            &apply("bob"),
            &Patch::Apply(status(json!([
                {"type": "A", "status": "False"}, {"type": "B", "status": "True"}
            ]))),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert!(
        err.message
            .contains(r#".status.conditions[type="A"].status"#),
        "{}",
        err.message
    );

    // Alice stops applying her condition: it goes, bob's stays.
    api.patch_status("m", &apply("alice"), &Patch::Apply(status(json!([]))))
        .await
        .unwrap();
    assert_eq!(conditions(), json!([{"type": "B", "status": "True"}]));
    let raw = server
        .object("test.watchkeeper.dev", "widgets", "default", "m")
        .unwrap();
    let bob = raw["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "bob")
        .unwrap();
    assert!(
        bob["fieldsV1"]["f:status"]["f:conditions"]
            .get(r#"k:{"type":"B"}"#)
            .is_some()
    );

    // Built-in kinds merge containers by name.
    let deps: Api<Deployment> = Api::namespaced(server.client(), "default");
    let with_container = |name: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "two"},
               "spec": {"template": {"spec": {"containers": [{"name": name, "image": format!("{name}:1")}]}}}})
    };
    deps.patch("two", &apply("one"), &Patch::Apply(with_container("a")))
        .await
        .unwrap();
    let d = deps
        .patch("two", &apply("other"), &Patch::Apply(with_container("b")))
        .await
        .unwrap();
    let names: Vec<String> = d
        .spec
        .template
        .spec
        .unwrap()
        .containers
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["a", "b"]);
}

#[tokio::test]
async fn non_structural_crds_are_rejected() {
    let server = ApiServer::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    let mut crd = serde_json::to_value(Widget::crd()).unwrap();
    let schema = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    schema["properties"]["spec"]["properties"]["untyped"] = json!({"description": "no type"});
    schema["properties"]["spec"]["oneOf"] =
        json!([{"properties": {"ghost": {"type": "string"}}, "required": ["ghost"]}]);
    schema["properties"]["metadata"] =
        json!({"type": "object", "properties": {"labels": {"type": "object"}}});
    let crd: CustomResourceDefinition = serde_json::from_value(crd).unwrap();
    let err = api_error(crds.create(&PostParams::default(), &crd).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    for expected in [
        "openAPIV3Schema.properties[spec].properties[untyped].type: Required value",
        "openAPIV3Schema.properties[spec].oneOf[0].properties[ghost]: Required value",
        "openAPIV3Schema.properties[metadata].properties[labels]: Forbidden",
    ] {
        assert!(
            err.message.contains(expected),
            "{expected} in {}",
            err.message
        );
    }
    // The test type itself (kube-derive output) is structural.
    crds.create(&PostParams::default(), &Widget::crd())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_lose_no_update() {
    let server = ApiServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &cm("counter", &[], &[("n", "0")]))
        .await
        .unwrap();
    let writers = 6;
    let increments = 15;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let api: Api<ConfigMap> = Api::namespaced(server.client_as(&format!("w{w}")), "default");
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..increments {
                // Bounded retries: every conflict means another writer won a round.
                for attempt in 0.. {
                    assert!(attempt < 1000, "no progress");
                    let mut current = api.get("counter").await.unwrap();
                    let n: u32 = current.data.as_ref().unwrap()["n"].parse().unwrap();
                    current.data = Some(BTreeMap::from([("n".to_string(), (n + 1).to_string())]));
                    match api
                        .replace("counter", &PostParams::default(), &current)
                        .await
                    {
                        Ok(_) => break,
                        Err(kube::Error::Api(s)) if s.code == 409 => conflicts += 1,
                        Err(other) => panic!("unexpected {other:?}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }
    let final_value = api.get("counter").await.unwrap().data.unwrap()["n"].clone();
    assert_eq!(final_value, (writers * increments).to_string());
    let updates = server.request_count("update", "configmaps");
    assert_eq!(updates, (writers * increments) as usize + conflicts);
}
