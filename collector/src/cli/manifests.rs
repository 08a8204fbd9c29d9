//! `whakapapa-collector manifests`: prints or writes the YAML that deploys the collector as a
//! cluster's audit webhook (see `deploy`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::deploy::{self, Options, pki::Pki};

/// `manifests` arguments.
#[derive(Debug, Clone, Args)]
pub struct ManifestsArgs {
    /// Namespace of the collector.
    #[arg(long, default_value = "whakapapa")]
    pub namespace: String,
    /// Name of the Deployment, Service and ServiceAccount.
    #[arg(long, default_value = "whakapapa-collector")]
    pub name: String,
    /// Container image of the collector.
    #[arg(long, default_value = "whakapapa-collector:latest")]
    pub image: String,
    /// Size of the volume holding the SQLite file.
    #[arg(long, default_value = "10Gi")]
    pub storage: String,
    /// Storage class of that volume (default: the cluster's default class).
    #[arg(long)]
    pub storage_class: Option<String>,
    /// Label (key=value) that opts a namespace in to purpose injection.
    #[arg(long, default_value = "whakapapa.dev/purpose=enabled")]
    pub opt_in_label: String,
    /// Fixed ClusterIP of the Service, which kube-apiserver (host network, no cluster DNS)
    /// posts audit batches to; must be inside the cluster's service CIDR.
    #[arg(
        long,
        default_value = "10.96.96.96",
        conflicts_with = "no_fixed_cluster_ip"
    )]
    pub cluster_ip: String,
    /// Let the cluster pick the ClusterIP; the audit kubeconfig then names the Service's DNS
    /// name (or --audit-url).
    #[arg(long)]
    pub no_fixed_cluster_ip: bool,
    /// Audit webhook URL for the kubeconfig, when kube-apiserver reaches the collector some
    /// other way (an ingress, a load balancer); must be https.
    #[arg(long, value_name = "URL")]
    pub audit_url: Option<String>,
    /// Directory holding the CA, certificates, keys and query token; generated on first use
    /// and reused afterwards, so the cluster keeps trusting the same CA.
    #[arg(long, default_value = "whakapapa-pki", value_name = "DIR")]
    pub pki_dir: PathBuf,
    /// Write every document as a file into this directory (the kind config mounts it into the
    /// control-plane node) instead of printing.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print only this document.
    #[arg(long, value_enum)]
    pub only: Option<Document>,
}

/// One of the documents `manifests` produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Document {
    /// audit.k8s.io/v1 Policy for --audit-policy-file.
    AuditPolicy,
    /// Kubeconfig for --audit-webhook-config-file.
    AuditKubeconfig,
    /// Namespace, ServiceAccount, Secrets, PVC, Deployment, Service, MutatingWebhookConfiguration.
    Collector,
    /// kind Cluster config wiring the audit webhook into kind's API server.
    Kind,
    /// AuditSink for legacy clusters with dynamic audit (Kubernetes 1.13-1.18).
    LegacyAuditSink,
}

impl ManifestsArgs {
    fn options(&self) -> anyhow::Result<Options> {
        let kind_dir = self
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("whakapapa-deploy"));
        let options = Options {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            image: self.image.clone(),
            storage: self.storage.clone(),
            storage_class: self.storage_class.clone(),
            opt_in_label: self.opt_in_label.clone(),
            cluster_ip: (!self.no_fixed_cluster_ip).then(|| self.cluster_ip.clone()),
            audit_url: self.audit_url.clone(),
            // kind resolves extraMounts on the machine running it: give it an absolute path.
            kind_host_dir: absolute(&kind_dir)?,
        };
        options.validate()?;
        Ok(options)
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// Runs `manifests`.
pub fn run(args: ManifestsArgs) -> anyhow::Result<()> {
    let options = args.options()?;
    let pki = Pki::load_or_generate(&args.pki_dir, &options.server_names())
        .context("cannot prepare the certificates")?;
    let manifests = deploy::render(&options, &pki)?;
    let files = manifests.files();
    let pick = |document: Document| {
        let index = match document {
            Document::AuditPolicy => 0,
            Document::AuditKubeconfig => 1,
            Document::Collector => 2,
            Document::Kind => 3,
            Document::LegacyAuditSink => 4,
        };
        files[index]
    };
    let mut stdout = std::io::stdout().lock();
    match (&args.out, args.only) {
        (_, Some(document)) => stdout.write_all(pick(document).1.as_bytes())?,
        (Some(dir), None) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (file, yaml) in files {
                let path = dir.join(file);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                writeln!(stdout, "wrote {}", path.display())?;
            }
        }
        (None, None) => {
            for (i, (file, yaml)) in files.iter().enumerate() {
                if i > 0 {
                    writeln!(stdout, "---")?;
                }
                writeln!(stdout, "# {file}")?;
                stdout.write_all(yaml.as_bytes())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ManifestsArgs,
    }

    #[test]
    fn flags_reach_the_options() {
        let w = Wrapper::try_parse_from([
            "manifests",
            "--namespace",
            "obs",
            "--storage",
            "5Gi",
            "--no-fixed-cluster-ip",
            "--out",
            "deploy",
        ])
        .unwrap();
        let options = w.args.options().unwrap();
        assert_eq!(options.namespace, "obs");
        assert_eq!(options.storage, "5Gi");
        assert_eq!(options.cluster_ip, None);
        assert!(options.kind_host_dir.is_absolute());
        assert!(options.kind_host_dir.ends_with("deploy"));
    }

    #[test]
    fn bad_values_are_errors() {
        let w = Wrapper::try_parse_from(["manifests", "--storage", "lots"]).unwrap();
        assert!(w.args.options().is_err());
        assert!(
            Wrapper::try_parse_from([
                "manifests",
                "--cluster-ip",
                "10.96.0.9",
                "--no-fixed-cluster-ip"
            ])
            .is_err()
        );
    }

    #[test]
    fn out_writes_every_file_and_reuses_the_pki() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("deploy");
        let pki = dir.path().join("pki");
        let args = |extra: &[&str]| {
            let mut argv = vec![
                "manifests".to_owned(),
                "--out".to_owned(),
                out.display().to_string(),
                "--pki-dir".to_owned(),
                pki.display().to_string(),
            ];
            argv.extend(extra.iter().map(|s| (*s).to_owned()));
            Wrapper::try_parse_from(argv).unwrap().args
        };
        run(args(&[])).unwrap();
        let first = std::fs::read_to_string(out.join("collector.yaml")).unwrap();
        for file in [
            "audit-policy.yaml",
            "audit-webhook.kubeconfig",
            "kind-cluster.yaml",
            "legacy-auditsink.yaml",
        ] {
            assert!(out.join(file).is_file(), "{file} missing");
        }
        run(args(&[])).unwrap();
        let second = std::fs::read_to_string(out.join("collector.yaml")).unwrap();
        assert_eq!(first, second, "same pki dir, same manifests");
        let kind = std::fs::read_to_string(out.join("kind-cluster.yaml")).unwrap();
        assert!(kind.contains(&out.display().to_string()), "{kind}");
    }
}
