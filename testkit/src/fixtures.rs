//! Objects tests seed the stand-in with ([`StandInConfig::with_object`]).
//!
//! [`StandInConfig::with_object`]: crate::StandInConfig::with_object

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// A pod `namespace/name` with one `pause` container, as a client would create it.
pub fn pod(namespace: &str, name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("registry.k8s.io/pause:3.10".into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// [`pod`] with the label `key=value`.
pub fn labelled_pod(namespace: &str, name: &str, key: &str, value: &str) -> Pod {
    let mut pod = pod(namespace, name);
    pod.metadata.labels = Some([(key.to_owned(), value.to_owned())].into());
    pod
}
