//! `manifests`: every document parses back as its typed Kubernetes object and the pieces
//! agree with each other (names, ports, paths, CA bundles, secrets, selectors).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::config::Kubeconfig;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::Value;
use whakapapa_collector::deploy::audit::{AuditSink, LEGACY_LABEL, Policy};
use whakapapa_collector::deploy::kind::{Cluster, ClusterConfigurationPatch};
use whakapapa_collector::deploy::pki::Pki;
use whakapapa_collector::deploy::{
    AUDIT_WEBHOOK_PATH, KIND_NODE_DIR, MUTATE_PATH, Manifests, Options, SERVICE_PORT, render,
};

/// The in-cluster objects of `manifests.collector`, typed.
struct Objects {
    namespace: Namespace,
    service_account: ServiceAccount,
    secrets: Vec<Secret>,
    pvc: PersistentVolumeClaim,
    deployment: Deployment,
    service: Service,
    webhook: MutatingWebhookConfiguration,
}

fn parse(manifests: &Manifests) -> Objects {
    let docs: Vec<Value> = serde_saphyr::from_multiple(&manifests.collector).expect("yaml stream");
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "Secret",
            "Secret",
            "PersistentVolumeClaim",
            "Deployment",
            "Service",
            "MutatingWebhookConfiguration"
        ]
    );
    let typed = |i: usize| docs[i].clone();
    Objects {
        namespace: serde_json::from_value(typed(0)).unwrap(),
        service_account: serde_json::from_value(typed(1)).unwrap(),
        secrets: vec![
            serde_json::from_value(typed(2)).unwrap(),
            serde_json::from_value(typed(3)).unwrap(),
        ],
        pvc: serde_json::from_value(typed(4)).unwrap(),
        deployment: serde_json::from_value(typed(5)).unwrap(),
        service: serde_json::from_value(typed(6)).unwrap(),
        webhook: serde_json::from_value(typed(7)).unwrap(),
    }
}

fn arg_after<'a>(args: &'a [String], flag: &str) -> &'a str {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} missing from {args:?}"));
    &args[i + 1]
}

fn root_store(ca_pem: &[u8]) -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(roots)
}

fn cert(pem: &[u8]) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem).unwrap()
}

/// kube-apiserver's side: the serving certificate verifies for `host` against `ca_pem`.
fn server_cert_verifies(ca_pem: &[u8], server_pem: &[u8], host: &str) -> bool {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(root_store(ca_pem), provider)
            .build()
            .unwrap();
    verifier
        .verify_server_cert(
            &cert(server_pem),
            &[],
            &ServerName::try_from(host.to_owned()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .is_ok()
}

/// The collector's side: kube-apiserver's client certificate verifies against `ca_pem`.
fn client_cert_verifies(ca_pem: &[u8], client_pem: &[u8]) -> bool {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(root_store(ca_pem), provider)
            .build()
            .unwrap();
    verifier
        .verify_client_cert(&cert(client_pem), &[], UnixTime::now())
        .is_ok()
}

fn check_wiring(options: &Options) {
    let pki = Pki::generate(&options.server_names()).unwrap();
    let manifests = render(options, &pki).unwrap();
    let o = parse(&manifests);
    let ns = options.namespace.as_str();
    let what = format!("{options:?}");

    // Namespace and namespaced objects.
    assert_eq!(o.namespace.metadata.name.as_deref(), Some(ns));
    for meta in [
        &o.service_account.metadata,
        &o.secrets[0].metadata,
        &o.secrets[1].metadata,
        &o.pvc.metadata,
        &o.deployment.metadata,
        &o.service.metadata,
    ] {
        assert_eq!(meta.namespace.as_deref(), Some(ns), "{what}");
    }

    // Deployment: one replica, selector matches its pods and the Service.
    let spec = &o.deployment.spec;
    assert_eq!(spec.replicas, Some(1));
    let selector = spec.selector.match_labels.clone().unwrap();
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    for (k, v) in &selector {
        assert_eq!(pod_labels.get(k), Some(v), "pod labels match the selector");
    }
    let service_spec = o.service.spec.as_ref().unwrap();
    assert_eq!(service_spec.selector.as_ref(), Some(&selector));
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(
        pod.service_account_name.as_deref(),
        o.service_account.metadata.name.as_deref()
    );

    // Ports: Service → named container port; probes use it with HTTPS.
    let container = &pod.containers[0];
    let port = &container.ports.as_ref().unwrap()[0];
    let service_port = &service_spec.ports.as_ref().unwrap()[0];
    assert_eq!(service_port.port, i32::from(SERVICE_PORT));
    assert_eq!(
        service_port.target_port,
        Some(IntOrString::String(port.name.clone().unwrap()))
    );
    let args = container.args.clone().unwrap();
    assert_eq!(
        arg_after(&args, "--listen"),
        format!("0.0.0.0:{}", port.container_port)
    );
    for (probe, path) in [
        (container.liveness_probe.as_ref(), "/healthz"),
        (container.readiness_probe.as_ref(), "/readyz"),
    ] {
        let get = probe.unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
        assert_eq!(get.port, IntOrString::String(port.name.clone().unwrap()));
    }
    assert!(container.resources.as_ref().unwrap().requests.is_some());
    assert_eq!(service_spec.cluster_ip, options.cluster_ip);

    // Volumes: the PVC and both secrets are mounted where the arguments point.
    let volumes = pod.volumes.clone().unwrap();
    let mounts = container.volume_mounts.clone().unwrap();
    let mount_of = |volume: &str| {
        mounts
            .iter()
            .find(|m| m.name == volume)
            .map(|m| m.mount_path.clone())
            .unwrap()
    };
    let mut mounted_secrets = BTreeMap::new();
    for volume in &volumes {
        if let Some(claim) = &volume.persistent_volume_claim {
            assert_eq!(Some(&claim.claim_name), o.pvc.metadata.name.as_ref());
            assert!(arg_after(&args, "--db").starts_with(&mount_of(&volume.name)));
        }
        if let Some(secret) = &volume.secret {
            mounted_secrets.insert(secret.secret_name.clone().unwrap(), mount_of(&volume.name));
        }
    }
    let secret_named = |name: &str| {
        o.secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no secret {name}"))
    };
    for (secret_name, dir) in &mounted_secrets {
        let secret = secret_named(secret_name);
        for flag in [
            "--tls-cert",
            "--tls-key",
            "--client-ca",
            "--query-token-file",
        ] {
            let path = arg_after(&args, flag);
            if let Some(key) = path.strip_prefix(&format!("{dir}/")) {
                assert!(
                    secret.data.as_ref().unwrap().contains_key(key),
                    "{flag} {path}: secret {secret_name} has no key {key}"
                );
            }
        }
    }
    assert_eq!(
        mounted_secrets.len(),
        2,
        "tls and token secrets are mounted"
    );
    let storage = &o
        .pvc
        .spec
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap()["storage"];
    assert_eq!(storage.0, options.storage);
    assert_eq!(
        o.pvc.spec.as_ref().unwrap().storage_class_name,
        options.storage_class
    );

    // TLS secret: serving pair plus the CA that verifies kube-apiserver.
    let tls = secret_named(&options.tls_secret()).data.clone().unwrap();
    assert_eq!(tls["ca.crt"].0, pki.ca_cert.as_bytes());
    for host in options.server_names() {
        assert!(
            server_cert_verifies(&tls["ca.crt"].0, &tls["tls.crt"].0, &host),
            "serving certificate invalid for {host}"
        );
    }
    assert!(!server_cert_verifies(
        &tls["ca.crt"].0,
        &tls["tls.crt"].0,
        "evil.example"
    ));

    // Mutating webhook: the Service, its port, /mutate, the CA, the opt-in label.
    let hook = &o.webhook.webhooks.as_ref().unwrap()[0];
    let svc = hook.client_config.service.as_ref().unwrap();
    assert_eq!(Some(&svc.name), o.service.metadata.name.as_ref());
    assert_eq!(svc.namespace, ns);
    assert_eq!(svc.port, Some(service_port.port));
    assert_eq!(svc.path.as_deref(), Some(MUTATE_PATH));
    assert_eq!(
        hook.client_config.ca_bundle.as_ref().unwrap().0,
        tls["ca.crt"].0
    );
    let (key, value) = options.opt_in_label.split_once('=').unwrap();
    assert_eq!(
        hook.namespace_selector.as_ref().unwrap().match_labels,
        Some(BTreeMap::from([(key.to_owned(), value.to_owned())]))
    );
    assert_eq!(hook.failure_policy.as_deref(), Some("Ignore"));
    assert_eq!(
        arg_after(&args, "--inject-collector-url"),
        options.collector_url()
    );

    // Side channel: the injected URL names the Service's plain port, which targets the
    // container port the collector serves `POST /purposes` on without TLS.
    let injected: http::Uri = arg_after(&args, "--inject-collector-url").parse().unwrap();
    assert_eq!(injected.scheme_str(), Some("http"));
    assert_eq!(
        injected.host(),
        Some(format!("{}.{ns}.svc", options.name).as_str())
    );
    let plain = service_spec
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .find(|p| Some(p.port) == injected.port_u16().map(i32::from))
        .expect("the injected port is a Service port");
    let Some(IntOrString::String(target)) = &plain.target_port else {
        panic!("side-channel target port is not named");
    };
    let listen_port = container
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .find(|p| p.name.as_ref() == Some(target))
        .expect("the Service targets a container port")
        .container_port;
    assert_eq!(
        arg_after(&args, "--side-channel-listen"),
        format!("0.0.0.0:{listen_port}")
    );
    assert!(args.iter().any(|a| a == "--open-side-channel"));

    // Audit webhook kubeconfig: kube's own parser; server is the Service; CA and client
    // certificate verify against what the collector uses.
    let kubeconfig = Kubeconfig::from_yaml(&manifests.audit_webhook_kubeconfig).unwrap();
    let cluster = kubeconfig.clusters[0].cluster.as_ref().unwrap();
    let server: http::Uri = cluster.server.as_deref().unwrap().parse().unwrap();
    assert_eq!(server.scheme_str(), Some("https"));
    assert_eq!(server.path(), AUDIT_WEBHOOK_PATH);
    assert_eq!(server.port_u16(), Some(SERVICE_PORT));
    let host = server.host().unwrap().trim_matches(['[', ']']).to_owned();
    match &options.cluster_ip {
        Some(ip) => assert_eq!(&host, ip),
        None => assert_eq!(host, format!("{}.{}.svc", options.name, ns)),
    }
    let kubeconfig_ca = decode(cluster.certificate_authority_data.as_deref().unwrap());
    assert_eq!(kubeconfig_ca, tls["ca.crt"].0);
    assert!(server_cert_verifies(
        &kubeconfig_ca,
        &tls["tls.crt"].0,
        &host
    ));
    let user: Value = serde_json::to_value(&kubeconfig.auth_infos[0]).unwrap();
    let client_cert = decode(user["user"]["client-certificate-data"].as_str().unwrap());
    assert!(client_cert_verifies(&tls["ca.crt"].0, &client_cert));
    let context = kubeconfig.contexts[0].context.as_ref().unwrap();
    assert_eq!(
        kubeconfig.current_context.as_deref(),
        Some(kubeconfig.contexts[0].name.as_str())
    );
    assert_eq!(context.cluster, kubeconfig.clusters[0].name);
    assert_eq!(
        context.user.as_deref(),
        Some(kubeconfig.auth_infos[0].name.as_str())
    );

    // Audit policy.
    let policy: Policy = serde_saphyr::from_str(&manifests.audit_policy).unwrap();
    assert_eq!(policy.api_version, "audit.k8s.io/v1");
    assert_eq!(policy.omit_stages, ["RequestReceived"]);
    assert_eq!(policy.rules.len(), 1);
    assert_eq!(policy.rules[0].level, "Metadata");

    // kind: the host dir is mounted at the node dir, the patch mounts that into the API
    // server and points both flags at files `--out` writes there.
    let kind: Cluster = serde_saphyr::from_str(&manifests.kind_cluster).unwrap();
    let node = &kind.nodes[0];
    assert_eq!(node.role, "control-plane");
    assert_eq!(node.extra_mounts[0].container_path, KIND_NODE_DIR);
    assert_eq!(
        node.extra_mounts[0].host_path,
        options.kind_host_dir.display().to_string()
    );
    let patch: ClusterConfigurationPatch =
        serde_saphyr::from_str(&node.kubeadm_config_patches[0]).unwrap();
    assert_eq!(patch.kind, "ClusterConfiguration");
    let volume = &patch.api_server.extra_volumes[0];
    assert_eq!(volume.host_path, KIND_NODE_DIR);
    let files: Vec<&str> = manifests.files().iter().map(|(f, _)| *f).collect();
    for flag in ["audit-policy-file", "audit-webhook-config-file"] {
        let path = &patch.api_server.extra_args[flag];
        let file = path
            .strip_prefix(&format!("{}/", volume.mount_path))
            .unwrap_or_else(|| panic!("{flag} {path} outside the mounted volume"));
        assert!(
            files.contains(&file),
            "{flag} names {file}, not a written file"
        );
    }
    if let Some(ip) = options.cluster_ip.as_deref().filter(|ip| !ip.contains(':')) {
        let prefix = kind.networking.service_subnet.trim_end_matches(".0.0/16");
        assert!(
            ip.starts_with(&format!("{prefix}.")),
            "{ip} outside {}",
            kind.networking.service_subnet
        );
    }

    // Legacy AuditSink: labelled, same Service, path and CA.
    let sink: AuditSink = serde_saphyr::from_str(&manifests.legacy_audit_sink).unwrap();
    assert_eq!(sink.api_version, "auditregistration.k8s.io/v1alpha1");
    assert_eq!(
        sink.metadata.labels.as_ref().unwrap()[LEGACY_LABEL.0],
        LEGACY_LABEL.1
    );
    let sink_service = sink.spec.webhook.client_config.service.as_ref().unwrap();
    assert_eq!(Some(&sink_service.name), o.service.metadata.name.as_ref());
    assert_eq!(sink_service.namespace, ns);
    assert_eq!(sink_service.path.as_deref(), Some(AUDIT_WEBHOOK_PATH));
    assert_eq!(sink_service.port, Some(service_port.port));
    assert_eq!(
        sink.spec
            .webhook
            .client_config
            .ca_bundle
            .as_ref()
            .unwrap()
            .0,
        tls["ca.crt"].0
    );
}

fn decode(base64: &str) -> Vec<u8> {
    serde_json::from_value::<k8s_openapi::ByteString>(Value::String(base64.to_owned()))
        .unwrap()
        .0
}

#[test]
fn manifests_parse_as_typed_objects_and_agree() {
    let cases = [
        Options::default(),
        {
            let mut o = Options::default();
            o.namespace = "observability".into();
            o.name = "audit-sink".into();
            o.storage = "50Gi".into();
            o.storage_class = Some("fast-ssd".into());
            o.opt_in_label = "purpose=on".into();
            o.cluster_ip = Some("10.100.7.7".into());
            o.kind_host_dir = "/tmp/whakapapa-kind".into();
            o
        },
        {
            let mut o = Options::default();
            o.cluster_ip = None;
            o
        },
    ];
    for options in &cases {
        check_wiring(options);
    }
}

#[test]
fn same_pki_renders_the_same_bytes() {
    let options = Options::default();
    let pki = Pki::generate(&options.server_names()).unwrap();
    assert_eq!(
        render(&options, &pki).unwrap(),
        render(&options, &pki).unwrap()
    );
}

#[test]
fn bad_options_are_refused_naming_the_option() {
    let mut options = Options::default();
    options.opt_in_label = "no-equals-sign".into();
    let pki = Pki::generate(&options.server_names()).unwrap();
    let err = render(&options, &pki).unwrap_err();
    assert!(
        err.to_string().contains("opt-in label \"no-equals-sign\""),
        "{err}"
    );
}
