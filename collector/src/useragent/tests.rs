use super::*;

/// What a parse should give, compactly: identity fields as a tuple, then the rest.
struct Want {
    ua: &'static str,
    /// name, version, os, arch, source, commit
    fields: [Option<&'static str>; 6],
    detail: Option<&'static str>,
    built: Option<(&'static str, &'static str)>,
    identity_text: Option<&'static str>,
    test: Option<(
        &'static str,
        Option<&'static str>,
        bool,
        &'static [&'static str],
    )>,
    fingerprint: Option<u64>,
    frames: &'static [(&'static str, &'static str, u32)],
    truncated: bool,
    original_ua: Option<&'static str>,
}

const NONE6: [Option<&str>; 6] = [None; 6];
const E2E: [Option<&str>; 6] = [
    Some("e2e.test"),
    Some("v1.36.0"),
    Some("linux"),
    Some("amd64"),
    Some("kubernetes"),
    Some("abc1234"),
];

const BASE: Want = Want {
    ua: "",
    fields: NONE6,
    detail: None,
    built: None,
    identity_text: None,
    test: None,
    fingerprint: None,
    frames: &[],
    truncated: false,
    original_ua: None,
};

fn table() -> Vec<Want> {
    vec![
        Want {
            ua: "kubelet/v1.36.0 (linux/amd64) kubernetes/abc1234",
            fields: [
                Some("kubelet"),
                Some("v1.36.0"),
                Some("linux"),
                Some("amd64"),
                Some("kubernetes"),
                Some("abc1234"),
            ],
            ..BASE
        },
        Want {
            ua: "kube-controller-manager/v1.36.0 (linux/arm64) kubernetes/3f7a50f/system:serviceaccount:kube-system:replicaset-controller",
            fields: [
                Some("kube-controller-manager"),
                Some("v1.36.0"),
                Some("linux"),
                Some("arm64"),
                Some("kubernetes"),
                Some("3f7a50f"),
            ],
            detail: Some("system:serviceaccount:kube-system:replicaset-controller"),
            ..BASE
        },
        Want {
            ua: "e2e.test/v1.36.0 (linux/amd64) kubernetes/abc1234 -- [sig-apps] Deployment should run the lifecycle of a Deployment [Conformance]",
            fields: E2E,
            identity_text: Some("e2e.test/v1.36.0 (linux/amd64) kubernetes/abc1234"),
            test: Some((
                "[sig-apps] Deployment should run the lifecycle of a Deployment [Conformance]",
                Some("sig-apps"),
                true,
                &[],
            )),
            ..BASE
        },
        Want {
            ua: "e2e.test/v1.36.0 (linux/amd64) kubernetes/abc1234 -- [sig-node] Pods should support remote command execution over websockets [NodeConformance] [Conformance]",
            fields: E2E,
            test: Some((
                "[sig-node] Pods should support remote command execution over websockets [NodeConformance] [Conformance]",
                Some("sig-node"),
                true,
                &["NodeConformance"],
            )),
            ..BASE
        },
        Want {
            ua: "e2e.test/v1.36.0 (linux/amd64) kubernetes/abc1234 -- [sig-storage] CSI Volumes [Driver: csi-hostpath] [Testpattern: Dynamic PV (default fs)] provisioning should provision storage with pvc data source [Slow] [Feature:VolumeSnapshotDataSource]",
            fields: E2E,
            test: Some((
                "[sig-storage] CSI Volumes [Driver: csi-hostpath] [Testpattern: Dynamic PV (default fs)] provisioning should provision storage with pvc data source [Slow] [Feature:VolumeSnapshotDataSource]",
                Some("sig-storage"),
                false,
                &[
                    "Driver: csi-hostpath",
                    "Testpattern: Dynamic PV (default fs)",
                    "Slow",
                    "Feature:VolumeSnapshotDataSource",
                ],
            )),
            ..BASE
        },
        // Cut by kube-apiserver inside the test name: the name is kept as far as it goes.
        Want {
            ua: "e2e.test/v1.36.0 (linux/amd64) kubernetes/abc1234 -- [sig-api-machinery] ResourceQuota [Serial] should verify Resour...TRUNCATED",
            fields: E2E,
            test: Some((
                "[sig-api-machinery] ResourceQuota [Serial] should verify Resour",
                Some("sig-api-machinery"),
                false,
                &["Serial"],
            )),
            truncated: true,
            ..BASE
        },
        Want {
            ua: "kube-probe/1.36",
            fields: [Some("kube-probe"), Some("1.36"), None, None, None, None],
            ..BASE
        },
        Want {
            ua: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
            identity_text: Some(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
            ),
            ..BASE
        },
        Want {
            ua: "",
            identity_text: Some(""),
            ..BASE
        },
        // KEP.md's example.
        Want {
            ua: "shop-controller/v0.3.1 (linux/amd64) git/4f2a9c1 built-by ci@runner-4 at 2026-11-20T10:00:00Z whakapapa/1 fp=9c0e4b7d12aa03f1 kube_client::api::Api<K>::list@kube-client-5.0.0/src/api/core_methods.rs:106 shop_controller::inventory::count_pods@src/inventory.rs:42 shop_controller::main@src/main.rs:17",
            fields: [
                Some("shop-controller"),
                Some("v0.3.1"),
                Some("linux"),
                Some("amd64"),
                Some("git"),
                Some("4f2a9c1"),
            ],
            built: Some(("ci@runner-4", "2026-11-20T10:00:00Z")),
            identity_text: Some(
                "shop-controller/v0.3.1 (linux/amd64) git/4f2a9c1 built-by ci@runner-4 at 2026-11-20T10:00:00Z",
            ),
            fingerprint: Some(0x9c0e4b7d12aa03f1),
            frames: &[
                (
                    "kube_client::api::Api<K>::list",
                    "kube-client-5.0.0/src/api/core_methods.rs",
                    106,
                ),
                (
                    "shop_controller::inventory::count_pods",
                    "src/inventory.rs",
                    42,
                ),
                ("shop_controller::main", "src/main.rs", 17),
            ],
            ..BASE
        },
        // A test, a previous user agent, escapes, a frame token that is not a frame.
        Want {
            ua: "app/v1.0.0 (linux/amd64) git/abc -- tests::caf%C3%A9_100% whakapapa/1 fp=000000000000feed ua=kubectl/v1.36.0%20(linux/amd64) app::%7B%7Bclosure%7D%7D@src/my%20file.rs:7 junk app::main@src/main.rs:1",
            fields: [
                Some("app"),
                Some("v1.0.0"),
                Some("linux"),
                Some("amd64"),
                Some("git"),
                Some("abc"),
            ],
            test: Some(("tests::café_100%", None, false, &[])),
            fingerprint: Some(0xfeed),
            frames: &[
                ("app::{{closure}}", "src/my file.rs", 7),
                ("app::main", "src/main.rs", 1),
            ],
            original_ua: Some("kubectl/v1.36.0 (linux/amd64)"),
            ..BASE
        },
        // The last marker wins: a test name may mention whakapapa's marker.
        Want {
            ua: "app/v1 (linux/amd64) git/abc -- parses whakapapa/1 fp=0000000000000001 x@y:1 whakapapa/1 fp=0000000000000002 f@src/lib.rs:3",
            fields: [
                Some("app"),
                Some("v1"),
                Some("linux"),
                Some("amd64"),
                Some("git"),
                Some("abc"),
            ],
            test: Some((
                "parses whakapapa/1 fp=0000000000000001 x@y:1",
                None,
                false,
                &[],
            )),
            fingerprint: Some(2),
            frames: &[("f", "src/lib.rs", 3)],
            ..BASE
        },
        // Cut inside the last frame: that partial frame is dropped.
        Want {
            ua: "app/v1 (linux/amd64) git/abc whakapapa/1 fp=00000000000000ff a::b@src/a.rs:10 a::c@src/a.rs:2...TRUNCATED",
            fields: [
                Some("app"),
                Some("v1"),
                Some("linux"),
                Some("amd64"),
                Some("git"),
                Some("abc"),
            ],
            fingerprint: Some(0xff),
            frames: &[("a::b", "src/a.rs", 10)],
            truncated: true,
            ..BASE
        },
        // A marker with a bad fingerprint is not whakapapa's: kept whole as the identity.
        Want {
            ua: "odd whakapapa/1 fp=xyz",
            identity_text: Some("odd whakapapa/1 fp=xyz"),
            ..BASE
        },
        // No identity at all before the marker.
        Want {
            ua: "whakapapa/1 fp=0000000000000003 m::f@src/m.rs:4",
            identity_text: Some(""),
            fingerprint: Some(3),
            frames: &[("m::f", "src/m.rs", 4)],
            ..BASE
        },
    ]
}

#[test]
fn parses_user_agents_table() {
    for want in table() {
        let got = parse(want.ua);
        let ua = want.ua;
        let id = &got.identity;
        let fields = [
            id.name.as_deref(),
            id.version.as_deref(),
            id.os.as_deref(),
            id.arch.as_deref(),
            id.source.as_deref(),
            id.commit.as_deref(),
        ];
        assert_eq!(fields, want.fields, "{ua}");
        assert_eq!(id.detail.as_deref(), want.detail, "{ua}");
        assert_eq!(
            id.built_by.as_deref().zip(id.built_at.as_deref()),
            want.built,
            "{ua}"
        );
        if let Some(text) = want.identity_text {
            assert_eq!(id.text, text, "{ua}");
        }
        let test = got.test.as_ref().map(|t| {
            (
                t.name.as_str(),
                t.sig.as_deref(),
                t.conformance,
                t.tags.iter().map(String::as_str).collect::<Vec<_>>(),
            )
        });
        assert_eq!(
            test,
            want.test.map(|(n, s, c, t)| (n, s, c, t.to_vec())),
            "{ua}"
        );
        assert_eq!(got.fingerprint, want.fingerprint, "{ua}");
        let frames: Vec<_> = got
            .frames
            .iter()
            .map(|f| (f.function.as_str(), f.file.as_str(), f.line))
            .collect();
        assert_eq!(frames, want.frames, "{ua}");
        assert_eq!(got.truncated, want.truncated, "{ua}");
        assert_eq!(got.original_ua.as_deref(), want.original_ua, "{ua}");
    }
}

#[test]
fn identity_renders_from_fields() {
    let id = Identity {
        name: Some("shop".into()),
        version: Some("v1".into()),
        os: Some("linux".into()),
        arch: Some("amd64".into()),
        source: Some("git".into()),
        commit: Some("abc".into()),
        built_by: Some("ci".into()),
        built_at: Some("2026-11-20T10:00:00Z".into()),
        ..Identity::default()
    };
    let text = id.render();
    assert_eq!(
        text,
        "shop/v1 (linux/amd64) git/abc built-by ci at 2026-11-20T10:00:00Z"
    );
    let parsed = Identity::parse(&text);
    assert_eq!(Identity { text, ..id }, parsed);
}

#[test]
fn percent_decoding_rejects_bad_escapes() {
    assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
    assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
    assert_eq!(percent_decode("a%2"), None);
    assert_eq!(percent_decode("a%zz"), None);
    assert_eq!(percent_decode("%FF"), None);
    assert_eq!(Frame::parse_token("f@file"), None);
    assert_eq!(Frame::parse_token("f@file:x1"), None);
    assert_eq!(Frame::parse_token("@file:1"), None);
}

/// The Audit-ID of KEP.md's layout, built here bit by bit from the KEP text.
fn kep_audit_id(fp: u64, random: [u8; 7]) -> String {
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&fp.to_be_bytes()[..6]);
    b[6] = 0x80 | (fp >> 12 & 0x0f) as u8;
    b[7] = (fp >> 4 & 0xff) as u8;
    b[8] = 0x80 | ((fp & 0x0f) as u8) << 2 | 0b01;
    b[9] = (0x57 & 0x3f) << 2 | (random[0] & 0b11);
    b[10..].copy_from_slice(&random[1..]);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[test]
fn fingerprint_from_audit_id_follows_kep_layout() {
    for fp in [0x9c0e_4b7d_12aa_03f1, 0, u64::MAX, 0x0123_4567_89ab_cdef] {
        for random in [[0u8; 7], [0xff; 7], [3, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x23]] {
            let id = kep_audit_id(fp, random);
            assert_eq!(fingerprint_from_audit_id(&id), Some(fp), "{id}");
            assert_eq!(fingerprint_from_audit_id(&id.to_uppercase()), Some(fp));
        }
    }
    let good = kep_audit_id(0xfeed, [0; 7]);
    let cases = [
        // kube-apiserver's own UUIDv4.
        "4d2b0a3e-5f7c-4b8a-9e1d-0c6f2a7b3d91".to_owned(),
        // Version 7 instead of 8.
        format!("{}7{}", &good[..14], &good[15..]),
        // Variant 11 instead of 10 (first hex digit of the 4th group c instead of 8..b).
        format!("{}c{}", &good[..19], &good[20..]),
        // Wrong magic.
        format!("{}0{}", &good[..21], &good[22..]),
        // Not canonical form.
        good.replace('-', ""),
        format!("{good}0"),
        good.replacen('-', "x", 1),
        String::new(),
        "not an id".to_owned(),
    ];
    for id in cases {
        assert_eq!(fingerprint_from_audit_id(&id), None, "{id}");
    }
}

/// kube-apiserver may cut a user agent at any byte: whatever survives, the frames we read are
/// whole frames of the original, in order, never a partial one; and nothing panics.
#[test]
fn truncation_anywhere_yields_only_whole_frames() {
    let full = "shop-controller/v0.3.1 (linux/amd64) git/4f2a9c1 -- tests::caf%C3%A9 whakapapa/1 fp=9c0e4b7d12aa03f1 ua=kubectl/v1.36.0 kube_client::api::Api<K>::list@kube-client-5.0.0/src/api/core_methods.rs:106 shop_controller::inventory::count_pods@src/inventory.rs:42 shop_controller::main@src/main.rs:17";
    let whole = parse(full);
    assert_eq!(whole.frames.len(), 3);
    for cut in 0..=full.len() {
        let ua = format!("{}{TRUNCATED_SUFFIX}", &full[..cut]);
        let got = parse(&ua);
        assert!(got.truncated, "cut {cut}");
        assert!(
            whole.frames.starts_with(&got.frames),
            "cut {cut}: {:?}",
            got.frames
        );
        if let Some(fp) = got.fingerprint {
            assert_eq!(fp, 0x9c0e4b7d12aa03f1, "cut {cut}");
            assert_eq!(
                got.test.as_ref().map(|t| t.name.as_str()),
                Some("tests::café"),
                "cut {cut}"
            );
        }
        if got.original_ua.is_some() {
            assert_eq!(got.original_ua.as_deref(), Some("kubectl/v1.36.0"));
        }
    }
}

/// Arbitrary bytes (as lossy text) never make the parsers panic.
#[test]
fn never_panics_on_garbage() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b" -/()[]%@:.whakpT0123456789abcdefWXYZ\xc3\xa9";
    for _ in 0..20_000 {
        let len = (next() % 80) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse(&text);
        let _ = parse(&format!(
            "a/b (c/d) e/f whakapapa/1 fp=0000000000000001 {text}"
        ));
        let _ = fingerprint_from_audit_id(&text);
        let _ = percent_decode(&text);
    }
}
