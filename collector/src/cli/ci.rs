//! `ingest gs://BUCKET/PREFIX` and `ingest --prow-job JOB [--build ID|latest]`: a CI build's
//! audit logs read from public GCS, each build one run recorded with its job, build id,
//! result, Kubernetes version and commit. A build already read whole is skipped, and objects
//! already read are not read again, so a cron job can run the same command every hour.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};

use super::{Ingest, IngestArgs, progress_bar};
use crate::ingest::gcs::{self, Client, Target};
use crate::ingest::spec;
use crate::mapping::Mapper;
use crate::store::ci::{self, CiBuild, CiObject};
use crate::store::{ReleaseId, read};

/// Where a build's Kubernetes version is when `finished.json` does not say (kind jobs).
const KIND_VERSION: &str = "kubernetes-version.txt";

pub(super) fn run(args: IngestArgs) -> anyhow::Result<()> {
    let client = Client::new(&gcs::endpoint_from_env(), gcs::Retry::default())?;
    let targets: Vec<Target> = match &args.prow_job {
        Some(job) => vec![gcs::prow_build(&client, &args.bucket, job, &args.build)?],
        None => args
            .paths
            .iter()
            .map(|p| gcs::resolve_url(&client, &p.to_string_lossy()))
            .collect::<Result<_, _>>()?,
    };
    let ingest = Ingest::open(&args)?;
    let store = &ingest.store;
    let mut failed = Vec::new();
    for target in &targets {
        let started = Instant::now();
        let url = format!("gs://{}/{}", target.bucket, target.prefix);
        let stored = ci::stored_build(&store.reader()?, &target.bucket, &target.prefix)?;
        if let Some(s) = stored.as_ref().filter(|s| s.complete) {
            println!(
                "{url}: {} already ingested (run {}); nothing new to read",
                describe(target),
                s.run.0
            );
            continue;
        }
        let listing = client.list(&target.bucket, &target.prefix, None)?;
        let mut build = CiBuild::new(&target.bucket, &target.prefix);
        let mut finished = false;
        if let Some((job, id)) = &target.prow {
            let info = build_info(&client, target, &listing)?;
            build.job = info
                .job
                .or_else(|| Some(job.clone()).filter(|j| !j.is_empty()));
            build.build = Some(id.clone());
            build.result = info.result;
            build.version = info.version;
            build.commit = info.commit;
            build.started_at = info.started_at;
            build.finished_at = info.finished_at;
            finished = info.finished;
        }
        let done: std::collections::HashSet<(String, String)> = stored
            .as_ref()
            .map(|s| s.done.iter().cloned().collect())
            .unwrap_or_default();
        let wanted: Vec<&gcs::Object> = listing
            .objects
            .iter()
            .filter(|o| {
                gcs::wanted(
                    &o.name[target.prefix.len()..],
                    target.prow.is_some(),
                    args.artifact_glob.as_deref(),
                )
            })
            .collect();
        let new: Vec<&gcs::Object> = wanted
            .iter()
            .copied()
            .filter(|o| !done.contains(&(o.name.clone(), o.generation.clone())))
            .collect();
        if wanted.is_empty() {
            eprintln!(
                "warning: {url}: no audit logs among {} objects{}",
                listing.objects.len(),
                if args.artifact_glob.is_some() {
                    " matching --artifact-glob"
                } else {
                    " (name others with --artifact-glob)"
                }
            );
        }
        let (release, mapper) = catalog_for(&ingest, &args, &url, build.version.as_deref())?;
        let run = match &stored {
            Some(s) => s.run,
            None => store.begin_run_blocking("ci", &url, Some(release))?,
        };
        let total: u64 = new.iter().map(|o| o.size).sum();
        let mut objects = Vec::new();
        let summary = ingest
            .pipeline_with(run, release, mapper)
            .with_progress(progress_bar(Some(total)))
            .run_with(|feed| {
                for object in &new {
                    if feed.stopped() {
                        break;
                    }
                    let name = format!("gs://{}/{}", target.bucket, object.name);
                    let reader = client.open(&target.bucket, object);
                    let outcome = feed.stream(&name, Box::new(reader));
                    let retry = outcome
                        .as_ref()
                        .err()
                        .is_some_and(|f| gcs::is_transport(&f.error));
                    if let Err(f) = &outcome {
                        let text = f.to_string();
                        failed.push(if text.contains(&name) {
                            text
                        } else {
                            format!("{name}: {text}")
                        });
                    }
                    objects.push(CiObject {
                        name: object.name.clone(),
                        generation: object.generation.clone(),
                        size: object.size,
                        error: outcome.err().map(|f| f.to_string()),
                        retry,
                    });
                }
            })?;
        store.finish_run_blocking(run)?;
        // Complete once finished and nothing is left to retry: later runs skip the build.
        build.complete = target.prow.is_some()
            && finished
            && objects.len() == new.len()
            && objects.iter().all(|o| !o.retry);
        store.record_ci_build_blocking(run, build.clone(), objects)?;
        println!(
            "{url}: {}{}; {} of {} audit log{} new",
            describe(target),
            fields(&build),
            new.len(),
            wanted.len(),
            if wanted.len() == 1 { "" } else { "s" },
        );
        ingest.print(run, &summary, started)?;
    }
    if !failed.is_empty() {
        bail!(
            "{} object{} not read whole (what was read is stored; the next run reads \
             transport failures again):\n  {}",
            failed.len(),
            if failed.len() == 1 { "" } else { "s" },
            failed.join("\n  ")
        );
    }
    Ok(())
}

/// The catalog a build's requests are mapped with. Without `--openapi`, a build of Kubernetes
/// 1.33 is mapped with a stored 1.33 release (the one loaded last) when the database has one:
/// its endpoints are the ones that build served. Otherwise the catalog loaded for the command,
/// with a warning when its minor release is not the build's.
fn catalog_for(
    ingest: &Ingest,
    args: &IngestArgs,
    url: &str,
    version: Option<&str>,
) -> anyhow::Result<(ReleaseId, Arc<Mapper>)> {
    let default = (ingest.release, ingest.mapper.clone());
    let Some(want) = version.and_then(minor) else {
        return Ok(default);
    };
    let label = &ingest.loaded.release.label;
    if args.catalog.openapi.is_some() || minor(label) == Some(want) {
        return Ok(default);
    }
    let conn = ingest.store.reader()?;
    let found = read::release_labels(&conn)?
        .into_iter()
        .rev()
        .find(|l| minor(l) == Some(want));
    let Some(found) = found else {
        eprintln!(
            "warning: {url}: the build is Kubernetes {}, and the database holds no {}.{} \
             release: its requests are mapped with {label} (ingest once with --openapi and \
             that release's OpenAPI document to map them with its own)",
            version.unwrap_or_default(),
            want.0,
            want.1
        );
        return Ok(default);
    };
    let stored = read::release(&conn, Some(&found))?
        .with_context(|| format!("release {found} disappeared"))?;
    let catalog = spec::catalog_of(&stored)
        .with_context(|| format!("cannot read the stored catalog of {found}"))?;
    println!(
        "{url}: Kubernetes {}: mapped with the stored release {found}",
        version.unwrap_or_default()
    );
    Ok((stored.id, Arc::new(Mapper::new(&catalog))))
}

/// A version's minor release: `v1.33.4` → (1, 33).
fn minor(version: &str) -> Option<(u32, u32)> {
    crate::query::progress::version(version).map(|(major, minor, _)| (major, minor))
}

fn describe(target: &Target) -> String {
    match &target.prow {
        Some((job, build)) if !job.is_empty() => format!("job {job} build {build}"),
        Some((_, build)) => format!("build {build}"),
        None => "prefix".into(),
    }
}

fn fields(build: &CiBuild) -> String {
    let mut out = String::new();
    for (label, v) in [
        ("result", &build.result),
        ("version", &build.version),
        ("commit", &build.commit),
    ] {
        if let Some(v) = v {
            out.push_str(&format!(", {label} {v}"));
        }
    }
    if build.job.is_some() && build.result.is_none() {
        out.push_str(", not finished");
    }
    out
}

/// Reads the build's metadata files that the listing has.
fn build_info(
    client: &Client,
    target: &Target,
    listing: &gcs::Listing,
) -> anyhow::Result<gcs::BuildInfo> {
    let find = |relative: &str| {
        let name = format!("{}{relative}", target.prefix);
        listing.objects.iter().find(|o| o.name == name)
    };
    let fetch = |object: Option<&gcs::Object>| -> anyhow::Result<Option<(String, Vec<u8>)>> {
        let Some(o) = object else { return Ok(None) };
        let what = format!("gs://{}/{}", target.bucket, o.name);
        Ok(client
            .get_small(&target.bucket, &o.name)?
            .map(|b| (what, b)))
    };
    let started = fetch(find("started.json"))?;
    let finished = fetch(find("finished.json"))?;
    let prowjob = fetch(find("prowjob.json"))?;
    // kind: artifacts/logs/kind-control-plane/kubernetes-version.txt
    let kind = listing.objects.iter().find(|o| {
        o.name[target.prefix.len()..].starts_with("artifacts/")
            && o.name.ends_with(&format!("/{KIND_VERSION}"))
    });
    let kind_version = fetch(kind)?;
    fn file(f: &Option<(String, Vec<u8>)>) -> Option<(&str, &[u8])> {
        f.as_ref().map(|(w, b)| (w.as_str(), b.as_slice()))
    }
    Ok(gcs::build_info(
        file(&started),
        file(&finished),
        file(&prowjob),
        kind_version.as_ref().map(|(_, b)| b.as_slice()),
    )?)
}

#[cfg(test)]
mod tests {
    use super::minor;

    #[test]
    fn a_builds_version_reads_as_its_minor_release() {
        assert_eq!(minor("v1.33.4"), Some((1, 33)));
        assert_eq!(minor("v1.36.0-alpha.1.23+0123abcd"), Some((1, 36)));
        assert_eq!(minor("1.36.0"), Some((1, 36)));
        assert_eq!(minor("v1.37"), Some((1, 37)));
        for bad in ["cluster", "v1", "vx.2", ""] {
            assert_eq!(minor(bad), None, "{bad}");
        }
    }
}
