//! A real Kubernetes control plane on loopback, auditing to a real `whakapapa-collector serve`.
//!
//! etcd, kube-apiserver, kube-controller-manager and kube-scheduler, built from their Go
//! modules by `scripts/kube-binaries.sh`, run as child processes in a temporary directory.
//! kube-apiserver audits through exactly the files `whakapapa-collector manifests` writes
//! (`audit-policy.yaml`, `audit-webhook.kubeconfig`, the collector's mTLS client certificate)
//! and calls the collector's admission webhook through the `MutatingWebhookConfiguration` of
//! `collector.yaml`, its service reference replaced by the collector's loopback URL (there is
//! no kube-proxy on loopback to route a Service).
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use whakapapa_e2e::cluster::{ControlPlane, KubeBinaries, Options};
//!
//! let binaries = KubeBinaries::find().map_err(anyhow::Error::msg)?;
//! let collector = whakapapa_e2e::cluster::collector_binary()?;
//! let mut cluster = ControlPlane::start(Options::new(binaries, collector)).await?;
//! let client = cluster.admin_client().await?;
//! // ... make requests, then read what the collector stored:
//! let db = cluster.stop_collector()?;
//! # Ok(()) }
//! ```
//!
//! Start-up is bounded ([`Options::startup_timeout`]); dropping the [`ControlPlane`] stops
//! every component. When a test panics, the directory with every component's log is kept and
//! its path printed.

mod binaries;
mod pki;
mod process;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::api::{Api, PostParams};

pub use binaries::{BINARIES, DEFAULT_VERSION, KubeBinaries};
pub use pki::{ClientCert, ClusterPki};
pub use process::Component;

/// What to start.
#[derive(Debug, Clone)]
pub struct Options {
    binaries: KubeBinaries,
    collector: PathBuf,
    controllers: bool,
    startup_timeout: Duration,
    apiserver_args: Vec<String>,
    kwok_nodes: usize,
}

impl Options {
    /// etcd, kube-apiserver and the collector (`collector` is the `whakapapa-collector`
    /// binary); kube-controller-manager and kube-scheduler too unless
    /// [`without_controllers`](Self::without_controllers).
    pub fn new(binaries: KubeBinaries, collector: PathBuf) -> Self {
        Self {
            binaries,
            collector,
            controllers: true,
            startup_timeout: Duration::from_secs(120),
            apiserver_args: Vec::new(),
            kwok_nodes: 0,
        }
    }

    /// `count` simulated nodes: kwok (`sigs.k8s.io/kwok`) keeps them Ready and runs the
    /// lifecycle of the pods bound to them (Running, then deleted), with no container behind
    /// any of them. Needs the controllers.
    pub fn kwok_nodes(mut self, count: usize) -> Self {
        self.kwok_nodes = count;
        self
    }

    /// No kube-controller-manager and kube-scheduler: only etcd, kube-apiserver, collector.
    pub fn without_controllers(mut self) -> Self {
        self.controllers = false;
        self
    }

    /// How long every component together may take to become ready.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Extra kube-apiserver flags (e.g. `--audit-log-path=FILE` for the log backend too).
    pub fn apiserver_arg(mut self, arg: impl Into<String>) -> Self {
        self.apiserver_args.push(arg.into());
        self
    }
}

/// The running control plane and collector.
pub struct ControlPlane {
    // Components stop in field order when dropped: controllers, then the API server, then
    // etcd and last the collector (so it receives the API server's final audit batch).
    kwok: Option<Component>,
    scheduler: Option<Component>,
    controller_manager: Option<Component>,
    apiserver: Option<Component>,
    etcd: Component,
    collector: Option<Component>,
    dir: Option<tempfile::TempDir>,
    options: Options,
    pki: ClusterPki,
    apiserver_url: String,
    collector_port: u16,
    side_channel_port: u16,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("dir", &self.dir())
            .field("apiserver", &self.apiserver_url)
            .field("collector", &self.collector_url())
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Starts everything and waits until kube-apiserver and the collector are ready and the
    /// admission webhook is registered.
    pub async fn start(options: Options) -> anyhow::Result<Self> {
        let deadline = Instant::now() + options.startup_timeout;
        let dir = tempfile::Builder::new()
            .prefix("whakapapa-cluster-")
            .tempdir()
            .context("cannot create the cluster directory")?;
        let root = dir.path().to_owned();
        std::fs::create_dir_all(root.join("logs"))?;
        let pki = ClusterPki::generate(&root.join("pki"))?;
        let [
            etcd_port,
            peer_port,
            api_port,
            collector_port,
            side_channel_port,
        ] = free_ports()?;
        let apiserver_url = format!("https://127.0.0.1:{api_port}");

        // The collector's files, written by the real `manifests` command.
        let manifests = std::process::Command::new(&options.collector)
            .arg("manifests")
            .arg("--audit-url")
            .arg(format!("https://127.0.0.1:{collector_port}/audit"))
            .arg("--pki-dir")
            .arg(root.join("whakapapa-pki"))
            .arg("--out")
            .arg(root.join("whakapapa-deploy"))
            .output()
            .with_context(|| format!("cannot run {}", options.collector.display()))?;
        anyhow::ensure!(
            manifests.status.success(),
            "whakapapa-collector manifests failed: {}",
            String::from_utf8_lossy(&manifests.stderr)
        );

        let logs = root.join("logs");
        let etcd = Component::start(
            "etcd",
            &options.binaries.path("etcd"),
            &[
                "--name=whakapapa".to_owned(),
                format!("--data-dir={}", root.join("etcd").display()),
                format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-cluster=whakapapa=http://127.0.0.1:{peer_port}"),
                // A test cluster: durability across a machine crash is not needed.
                "--unsafe-no-fsync".to_owned(),
                "--log-level=warn".to_owned(),
            ],
            &logs,
        )?;

        let mut plane = Self {
            kwok: None,
            scheduler: None,
            controller_manager: None,
            apiserver: None,
            etcd,
            collector: None,
            dir: Some(dir),
            options,
            pki,
            apiserver_url,
            collector_port,
            side_channel_port,
        };
        plane.start_collector()?;
        plane.wait_collector_ready(deadline).await?;

        let deploy = root.join("whakapapa-deploy");
        let apiserver = plane.pki.apiserver();
        let mut args = vec![
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            "--bind-address=127.0.0.1".to_owned(),
            "--advertise-address=127.0.0.1".to_owned(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", root.join("apiserver-certs").display()),
            format!("--tls-cert-file={}", apiserver.cert.display()),
            format!("--tls-private-key-file={}", apiserver.key.display()),
            format!("--client-ca-file={}", plane.pki.ca_cert().display()),
            format!(
                "--service-account-key-file={}",
                plane.pki.service_account_pub().display()
            ),
            format!(
                "--service-account-signing-key-file={}",
                plane.pki.service_account_key().display()
            ),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_owned(),
            "--service-cluster-ip-range=10.96.0.0/12".to_owned(),
            // The `kubernetes` Service's endpoints may not be loopback addresses.
            "--endpoint-reconciler-type=none".to_owned(),
            "--authorization-mode=Node,RBAC".to_owned(),
            format!(
                "--audit-policy-file={}",
                deploy.join("audit-policy.yaml").display()
            ),
            format!(
                "--audit-webhook-config-file={}",
                deploy.join("audit-webhook.kubeconfig").display()
            ),
            // As the README tells kubeadm users to set it.
            "--audit-webhook-batch-max-wait=1s".to_owned(),
        ];
        args.extend(plane.options.apiserver_args.iter().cloned());
        plane.apiserver = Some(Component::start(
            "kube-apiserver",
            &plane.options.binaries.path("kube-apiserver"),
            &args,
            &logs,
        )?);
        plane.wait_apiserver_ready(deadline).await?;
        plane.register_admission_webhook().await?;

        if plane.options.controllers {
            plane.start_controllers()?;
            plane.wait_controllers_ready(deadline).await?;
        }
        if plane.options.kwok_nodes > 0 {
            plane.start_kwok(deadline).await?;
        }
        Ok(plane)
    }

    /// The temporary directory holding PKI, manifests, logs and the collector's database.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// kube-apiserver's URL, `https://127.0.0.1:PORT`.
    pub fn apiserver_url(&self) -> &str {
        &self.apiserver_url
    }

    /// The collector's HTTPS URL (audit webhook, admission, query API, metrics).
    pub fn collector_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.collector_port)
    }

    /// The collector's plain-HTTP side channel (`POST /purposes`), as injected into pods.
    pub fn side_channel_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.side_channel_port)
    }

    /// The collector's SQLite file.
    pub fn db(&self) -> PathBuf {
        self.dir().join("collector.db")
    }

    /// The cluster's certificates.
    pub fn pki(&self) -> &ClusterPki {
        &self.pki
    }

    /// The directory `whakapapa-collector manifests --out` wrote.
    pub fn manifests_dir(&self) -> PathBuf {
        self.dir().join("whakapapa-deploy")
    }

    /// The collector's PKI directory (its CA, serving certificate, query token).
    pub fn collector_pki_dir(&self) -> PathBuf {
        self.dir().join("whakapapa-pki")
    }

    /// A kubeconfig file for `who`: `admin`, `controller-manager` or `scheduler`.
    pub fn kubeconfig(&self, who: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir().join(format!("{who}.kubeconfig"));
        if !path.exists() {
            let text = pki::kubeconfig(
                &self.apiserver_url,
                &self.pki.ca_cert(),
                &self.pki.client(who),
                who,
            );
            std::fs::write(&path, text)?;
        }
        Ok(path)
    }

    /// kube-rs configuration for the admin (system:masters); add layers to its client.
    pub async fn admin_config(&self) -> anyhow::Result<kube::Config> {
        let kubeconfig = kube::config::Kubeconfig::read_from(self.kubeconfig("admin")?)?;
        Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?)
    }

    /// A kube-rs client for the admin.
    pub async fn admin_client(&self) -> anyhow::Result<kube::Client> {
        Ok(kube::Client::try_from(self.admin_config().await?)?)
    }

    /// A client for the collector's HTTPS port, trusting its CA and sending its query token.
    pub async fn collector_client(&self) -> anyhow::Result<kube::Client> {
        let pki = self.collector_pki_dir();
        let token = std::fs::read_to_string(pki.join("query-token"))?;
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    \
             certificate-authority: {}\nusers:\n- name: q\n  user:\n    token: {}\ncontexts:\n- name: c\n  \
             context:\n    cluster: c\n    user: q\ncurrent-context: c\n",
            self.collector_url(),
            pki.join("ca.crt").display(),
            token.trim()
        );
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&text)?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Starts `whakapapa-collector serve` on the database, with the arguments its Deployment in
    /// `collector.yaml` has, on loopback. Used again after [`stop_collector`](Self::stop_collector)
    /// to restart on the same file.
    pub fn start_collector(&mut self) -> anyhow::Result<()> {
        self.start_collector_with(&["--openapi", "embedded"], None)
    }

    /// [`start_collector`](Self::start_collector) with `catalog` as its catalog arguments
    /// instead of `--openapi embedded` (e.g. `--openapi cluster --refresh-openapi 2s`), and
    /// `KUBECONFIG` set to `kubeconfig` if given (what `--openapi cluster` reads).
    pub fn start_collector_with(
        &mut self,
        catalog: &[&str],
        kubeconfig: Option<&Path>,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(self.collector.is_none(), "the collector is running");
        let pki = self.collector_pki_dir();
        let file = |f: &str| pki.join(f).display().to_string();
        let args = vec![
            "serve".to_owned(),
            "--listen".to_owned(),
            format!("127.0.0.1:{}", self.collector_port),
            "--db".to_owned(),
            self.db().display().to_string(),
            "--tls-cert".to_owned(),
            file("tls.crt"),
            "--tls-key".to_owned(),
            file("tls.key"),
            "--client-ca".to_owned(),
            file("ca.crt"),
            "--query-token-file".to_owned(),
            file("query-token"),
            "--open-side-channel".to_owned(),
            "--side-channel-listen".to_owned(),
            format!("127.0.0.1:{}", self.side_channel_port),
            "--inject-collector-url".to_owned(),
            self.side_channel_url(),
        ];
        let args: Vec<String> = args
            .into_iter()
            .chain(catalog.iter().map(|a| a.to_string()))
            .collect();
        let logs = self.dir().join("logs");
        let env: Vec<(&str, &Path)> = kubeconfig.map(|k| ("KUBECONFIG", k)).into_iter().collect();
        self.collector = Some(Component::start_with_env(
            "whakapapa-collector",
            &self.options.collector,
            &args,
            &env,
            &logs,
        )?);
        Ok(())
    }

    /// Stops the collector as Kubernetes stops a pod (SIGTERM: requests in flight finish, the
    /// run is closed) and returns its database file.
    pub fn stop_collector(&mut self) -> anyhow::Result<PathBuf> {
        if let Some(mut collector) = self.collector.take() {
            anyhow::ensure!(
                collector.stop(Duration::from_secs(30)),
                "the collector did not stop within 30 s of SIGTERM:\n{}",
                collector.tail(20)
            );
        }
        Ok(self.db())
    }

    /// Sends a signal (`STOP`, `CONT`, ...) to the collector's process: `STOP` freezes it with
    /// its port still open, as a collector too slow for the API server's timeouts.
    pub fn signal_collector(&self, signal: &str) -> anyhow::Result<()> {
        let collector = self
            .collector
            .as_ref()
            .context("the collector is stopped")?;
        collector.signal(signal)
    }

    /// Waits until the collector answers `/readyz`.
    pub async fn wait_collector_ready(&mut self, deadline: Instant) -> anyhow::Result<()> {
        let client = self.collector_client().await?;
        self.wait_ready(&client, "the collector", deadline).await
    }

    async fn wait_apiserver_ready(&mut self, deadline: Instant) -> anyhow::Result<()> {
        let client = self.admin_client().await?;
        self.wait_ready(&client, "kube-apiserver", deadline).await
    }

    /// Polls `/readyz` through `client` until it answers 200, every component still running.
    async fn wait_ready(
        &mut self,
        client: &kube::Client,
        what: &str,
        deadline: Instant,
    ) -> anyhow::Result<()> {
        loop {
            self.check_running()?;
            let ready = client
                .request_text(http::Request::get("/readyz").body(Vec::new())?)
                .await;
            if ready.is_ok() {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{what} was not ready in time: {ready:?}\n{}",
                self.tails(15)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates the `MutatingWebhookConfiguration` of `collector.yaml`, pointed at the
    /// collector's loopback URL.
    async fn register_admission_webhook(&self) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(self.manifests_dir().join("collector.yaml"))?;
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(&text).context("collector.yaml")?;
        let mut webhook = docs
            .into_iter()
            .find(|d| d["kind"] == "MutatingWebhookConfiguration")
            .context("collector.yaml has no MutatingWebhookConfiguration")?;
        let url = format!("{}/mutate", self.collector_url());
        for hook in webhook["webhooks"]
            .as_array_mut()
            .context("no webhooks in the MutatingWebhookConfiguration")?
        {
            let config = hook["clientConfig"]
                .as_object_mut()
                .context("webhook without clientConfig")?;
            config.remove("service");
            config.insert("url".to_owned(), url.clone().into());
        }
        let webhook: MutatingWebhookConfiguration = serde_json::from_value(webhook)?;
        let api: Api<MutatingWebhookConfiguration> = Api::all(self.admin_client().await?);
        api.create(&PostParams::default(), &webhook).await?;
        Ok(())
    }

    /// Starts kwok managing every node, creates the nodes and waits until they are Ready.
    async fn start_kwok(&mut self, deadline: Instant) -> anyhow::Result<()> {
        use k8s_openapi::api::core::v1::Node;
        let args = vec![
            format!("--kubeconfig={}", self.kubeconfig("admin")?.display()),
            "--manage-all-nodes=true".to_owned(),
            // kwok's default stages, which scripts/kube-binaries.sh copies from its module
            // (kwok would otherwise read ~/.kwok/kwok.yaml).
            format!(
                "--config={}",
                self.options.binaries.path("kwok-stages.yaml").display()
            ),
        ];
        self.kwok = Some(Component::start(
            "kwok",
            &self.options.binaries.path("kwok"),
            &args,
            &self.dir().join("logs"),
        )?);
        let nodes: Api<Node> = Api::all(self.admin_client().await?);
        for i in 0..self.options.kwok_nodes {
            let node: Node = serde_json::from_value(serde_json::json!({
                "metadata": {
                    "name": format!("kwok-node-{i}"),
                    "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {"kubernetes.io/hostname": format!("kwok-node-{i}"),
                               "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                               "type": "kwok"},
                },
                "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                           "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}},
            }))?;
            nodes.create(&PostParams::default(), &node).await?;
        }
        loop {
            self.check_running()?;
            let ready = nodes
                .list(&Default::default())
                .await?
                .items
                .iter()
                .filter(|n| {
                    n.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
                .count();
            if ready == self.options.kwok_nodes {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{ready} of {} kwok nodes Ready in time",
                self.options.kwok_nodes
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until kube-controller-manager's service-account controller has made the
    /// `default` ServiceAccount of `default`: pods can be created from then on (the
    /// ServiceAccount admission plugin refuses them before).
    async fn wait_controllers_ready(&mut self, deadline: Instant) -> anyhow::Result<()> {
        let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(self.admin_client().await?, "default");
        loop {
            self.check_running()?;
            if accounts.get_opt("default").await?.is_some() {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "kube-controller-manager made no default ServiceAccount in time"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn start_controllers(&mut self) -> anyhow::Result<()> {
        let logs = self.dir().join("logs");
        let bin = |name: &str| self.options.binaries.path(name);
        let kcm = vec![
            format!(
                "--kubeconfig={}",
                self.kubeconfig("controller-manager")?.display()
            ),
            // Each controller with its own service account, as kubeadm runs it: its requests
            // are attributed to `system:serviceaccount:kube-system:<controller>`.
            "--use-service-account-credentials=true".to_owned(),
            format!(
                "--service-account-private-key-file={}",
                self.pki.service_account_key().display()
            ),
            format!("--root-ca-file={}", self.pki.ca_cert().display()),
            format!(
                "--cluster-signing-cert-file={}",
                self.pki.ca_cert().display()
            ),
            format!("--cluster-signing-key-file={}", self.pki.ca_key().display()),
            "--leader-elect=false".to_owned(),
            "--secure-port=0".to_owned(),
        ];
        self.controller_manager = Some(Component::start(
            "kube-controller-manager",
            &bin("kube-controller-manager"),
            &kcm,
            &logs,
        )?);
        let scheduler = vec![
            format!("--kubeconfig={}", self.kubeconfig("scheduler")?.display()),
            "--leader-elect=false".to_owned(),
            "--secure-port=0".to_owned(),
        ];
        self.scheduler = Some(Component::start(
            "kube-scheduler",
            &bin("kube-scheduler"),
            &scheduler,
            &logs,
        )?);
        Ok(())
    }

    /// The end of the logs of kube-apiserver, the collector and kube-controller-manager, the
    /// components whose logs say why a test failed.
    fn tails(&self, lines: usize) -> String {
        [
            self.apiserver.as_ref(),
            self.collector.as_ref(),
            self.controller_manager.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|c| format!("--- the end of {} ---\n{}\n", c.name(), c.tail(lines)))
        .collect()
    }

    /// An error naming the component if any has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        self.etcd.check_running()?;
        for c in [
            self.apiserver.as_mut(),
            self.controller_manager.as_mut(),
            self.scheduler.as_mut(),
            self.kwok.as_mut(),
            self.collector.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            c.check_running()?;
        }
        Ok(())
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let path = dir.keep();
            eprintln!(
                "control plane kept for inspection: {} (logs in {}/logs)",
                path.display(),
                path.display()
            );
            eprint!("{}", self.tails(15));
        }
    }
}

/// The `whakapapa-collector` binary cargo built beside the running test or example
/// (`target/<profile>/whakapapa-collector`).
pub fn collector_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(3) {
        let candidate = dir.join("whakapapa-collector");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    anyhow::bail!(
        "no whakapapa-collector binary beside {} (cargo build -p whakapapa-collector)",
        exe.display()
    )
}

/// `N` ports free on 127.0.0.1 right now (bound together, then released).
fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}
