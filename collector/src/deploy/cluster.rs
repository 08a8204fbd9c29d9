//! The in-cluster objects: Namespace, ServiceAccount, Secrets, PVC, Deployment, Service and
//! the MutatingWebhookConfiguration, all k8s-openapi types.

use std::collections::BTreeMap;

use super::pki::{Pki, files};
use super::{
    CONTAINER_PORT, DATA_DIR, Error, MUTATE_PATH, Options, SERVICE_PORT, SIDE_CHANNEL_PORT,
    TLS_DIR, TOKENS_DIR, to_yaml,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, HTTPGetAction, Namespace,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    Secret, SecretVolumeSource, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec,
    Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Name of the container port (probes and the Service refer to it by name).
const PORT_NAME: &str = "https";
/// Name of the plain side-channel port.
const SIDE_CHANNEL_PORT_NAME: &str = "side-channel";
/// Name of the database file inside [`DATA_DIR`].
const DB_FILE: &str = "collector.sqlite";
/// Non-root user the collector runs as (distroless "nonroot").
const RUN_AS: i64 = 65_532;

/// Every object as one YAML stream for `kubectl apply -f`.
pub(super) fn objects(options: &Options, pki: &Pki) -> Result<String, Error> {
    let docs = [
        to_yaml("namespace", &namespace(options))?,
        to_yaml("service account", &service_account(options))?,
        to_yaml("tls secret", &tls_secret(options, pki))?,
        to_yaml("token secret", &tokens_secret(options, pki))?,
        to_yaml("persistent volume claim", &pvc(options))?,
        to_yaml("deployment", &deployment(options))?,
        to_yaml("service", &service(options))?,
        to_yaml("mutating webhook", &mutating_webhook(options, pki)?)?,
    ];
    Ok(docs.join("---\n"))
}

fn labels(options: &Options) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), options.name.clone()),
        (
            "app.kubernetes.io/part-of".to_owned(),
            "whakapapa".to_owned(),
        ),
    ])
}

fn selector(options: &Options) -> BTreeMap<String, String> {
    BTreeMap::from([("app.kubernetes.io/name".to_owned(), options.name.clone())])
}

fn meta(options: &Options, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(options.namespace.clone()),
        labels: Some(labels(options)),
        ..ObjectMeta::default()
    }
}

fn namespace(options: &Options) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(options.namespace.clone()),
            labels: Some(labels(options)),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

fn service_account(options: &Options) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(options, options.name.clone()),
        // The collector never calls the API server.
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

fn string_data(entries: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
        .collect()
}

fn tls_secret(options: &Options, pki: &Pki) -> Secret {
    Secret {
        metadata: meta(options, options.tls_secret()),
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(string_data(&[
            ("tls.crt", &pki.server_cert),
            ("tls.key", &pki.server_key),
            ("ca.crt", &pki.ca_cert),
        ])),
        ..Secret::default()
    }
}

fn tokens_secret(options: &Options, pki: &Pki) -> Secret {
    Secret {
        metadata: meta(options, options.tokens_secret()),
        type_: Some("Opaque".to_owned()),
        data: Some(string_data(&[(files::QUERY_TOKEN, &pki.query_token)])),
        ..Secret::default()
    }
}

fn pvc(options: &Options) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: meta(options, format!("{}-data", options.name)),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: options.storage_class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(options.storage.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

fn probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(PORT_NAME.to_owned()),
            scheme: Some("HTTPS".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

/// The `serve` arguments of the collector's container.
fn args(options: &Options) -> Vec<String> {
    let tls = |file: &str| format!("{TLS_DIR}/{file}");
    [
        "serve".to_owned(),
        "--listen".to_owned(),
        format!("0.0.0.0:{CONTAINER_PORT}"),
        "--db".to_owned(),
        format!("{DATA_DIR}/{DB_FILE}"),
        "--tls-cert".to_owned(),
        tls("tls.crt"),
        "--tls-key".to_owned(),
        tls("tls.key"),
        "--client-ca".to_owned(),
        tls("ca.crt"),
        "--query-token-file".to_owned(),
        format!("{TOKENS_DIR}/{}", files::QUERY_TOKEN),
        "--open-side-channel".to_owned(),
        "--side-channel-listen".to_owned(),
        format!("0.0.0.0:{SIDE_CHANNEL_PORT}"),
        "--inject-collector-url".to_owned(),
        options.collector_url(),
        "--openapi".to_owned(),
        "embedded".to_owned(),
    ]
    .into()
}

fn deployment(options: &Options) -> Deployment {
    let quantity = |q: &str| Quantity(q.to_owned());
    let container = Container {
        name: "collector".to_owned(),
        image: Some(options.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(args(options)),
        env: Some(vec![EnvVar {
            name: "RUST_LOG".to_owned(),
            value: Some("info".to_owned()),
            ..EnvVar::default()
        }]),
        ports: Some(vec![
            ContainerPort {
                name: Some(PORT_NAME.to_owned()),
                container_port: i32::from(CONTAINER_PORT),
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some(SIDE_CHANNEL_PORT_NAME.to_owned()),
                container_port: i32::from(SIDE_CHANNEL_PORT),
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
        ]),
        liveness_probe: Some(probe("/healthz", 10)),
        readiness_probe: Some(probe("/readyz", 5)),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), quantity("100m")),
                ("memory".to_owned(), quantity("128Mi")),
            ])),
            limits: Some(BTreeMap::from([("memory".to_owned(), quantity("1Gi"))])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "data".to_owned(),
                mount_path: DATA_DIR.to_owned(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tls".to_owned(),
                mount_path: TLS_DIR.to_owned(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tokens".to_owned(),
                mount_path: TOKENS_DIR.to_owned(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };
    let secret = |name: String| SecretVolumeSource {
        secret_name: Some(name),
        default_mode: Some(0o400),
        ..SecretVolumeSource::default()
    };
    Deployment {
        metadata: meta(options, options.name.clone()),
        spec: DeploymentSpec {
            // One writer owns the SQLite file: never two pods on one volume.
            replicas: Some(1),
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".to_owned()),
                ..DeploymentStrategy::default()
            }),
            selector: LabelSelector {
                match_labels: Some(selector(options)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(options)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(options.name.clone()),
                    automount_service_account_token: Some(false),
                    // Graceful shutdown commits in-flight batches; give it time.
                    termination_grace_period_seconds: Some(30),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUN_AS),
                        run_as_group: Some(RUN_AS),
                        fs_group: Some(RUN_AS),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container],
                    volumes: Some(vec![
                        Volume {
                            name: "data".to_owned(),
                            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                claim_name: format!("{}-data", options.name),
                                ..PersistentVolumeClaimVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        Volume {
                            name: "tls".to_owned(),
                            secret: Some(secret(options.tls_secret())),
                            ..Volume::default()
                        },
                        Volume {
                            name: "tokens".to_owned(),
                            secret: Some(secret(options.tokens_secret())),
                            ..Volume::default()
                        },
                    ]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

fn service(options: &Options) -> Service {
    Service {
        metadata: meta(options, options.name.clone()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            cluster_ip: options.cluster_ip.clone(),
            selector: Some(selector(options)),
            ports: Some(vec![
                ServicePort {
                    name: Some(PORT_NAME.to_owned()),
                    port: i32::from(SERVICE_PORT),
                    target_port: Some(IntOrString::String(PORT_NAME.to_owned())),
                    protocol: Some("TCP".to_owned()),
                    ..ServicePort::default()
                },
                ServicePort {
                    name: Some(SIDE_CHANNEL_PORT_NAME.to_owned()),
                    port: i32::from(SIDE_CHANNEL_PORT),
                    target_port: Some(IntOrString::String(SIDE_CHANNEL_PORT_NAME.to_owned())),
                    protocol: Some("TCP".to_owned()),
                    ..ServicePort::default()
                },
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn mutating_webhook(options: &Options, pki: &Pki) -> Result<MutatingWebhookConfiguration, Error> {
    let (key, value) = options.opt_in()?;
    Ok(MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(format!("{}-purpose", options.name)),
            labels: Some(labels(options)),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: "purpose.whakapapa.dev".to_owned(),
            admission_review_versions: vec!["v1".to_owned()],
            client_config: WebhookClientConfig {
                ca_bundle: Some(ByteString(pki.ca_cert.as_bytes().to_vec())),
                service: Some(ServiceReference {
                    namespace: options.namespace.clone(),
                    name: options.name.clone(),
                    path: Some(MUTATE_PATH.to_owned()),
                    port: Some(i32::from(SERVICE_PORT)),
                }),
                url: None,
            },
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(key.to_owned(), value.to_owned())])),
                ..LabelSelector::default()
            }),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec![String::new()]),
                api_versions: Some(vec!["v1".to_owned()]),
                operations: Some(vec!["CREATE".to_owned()]),
                resources: Some(vec!["pods".to_owned()]),
                scope: Some("Namespaced".to_owned()),
            }]),
            // Purpose is an observability aid: a collector that is down must never stop
            // pods from being created.
            failure_policy: Some("Ignore".to_owned()),
            side_effects: "None".to_owned(),
            reinvocation_policy: Some("IfNeeded".to_owned()),
            timeout_seconds: Some(5),
            ..MutatingWebhook::default()
        }]),
    })
}
