use super::*;

#[test]
fn parses_client_go_identity() {
    let ua = parse("kubelet/v1.36.0 (linux/amd64) kubernetes/abc1234");
    let id = &ua.identity;
    assert_eq!(id.text, "kubelet/v1.36.0 (linux/amd64) kubernetes/abc1234");
    assert_eq!(id.name.as_deref(), Some("kubelet"));
    assert_eq!(id.version.as_deref(), Some("v1.36.0"));
    assert_eq!(id.os.as_deref(), Some("linux"));
    assert_eq!(id.arch.as_deref(), Some("amd64"));
    assert_eq!(id.source.as_deref(), Some("kubernetes"));
    assert_eq!(id.commit.as_deref(), Some("abc1234"));
    assert_eq!((ua.test, ua.fingerprint, ua.truncated), (None, None, false));
}

#[test]
fn fingerprint_from_audit_id_follows_kep_layout() {
    let fp: u64 = 0x9c0e_4b7d_12aa_03f1;
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&fp.to_be_bytes()[..6]);
    b[6] = 0x80 | (fp >> 12 & 0x0f) as u8;
    b[7] = (fp >> 4 & 0xff) as u8;
    b[8] = 0x80 | ((fp & 0x0f) as u8) << 2 | 0b01;
    b[9] = (0x57 & 0x3f) << 2 | 0b10;
    b[10..].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x01, 0x23]);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let id = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    assert_eq!(fingerprint_from_audit_id(&id), Some(fp));
    assert_eq!(fingerprint_from_audit_id(&id.to_uppercase()), Some(fp));
    // kube-apiserver's own UUIDv4 carries none.
    assert_eq!(
        fingerprint_from_audit_id("4d2b0a3e-5f7c-4b8a-9e1d-0c6f2a7b3d91"),
        None
    );
}
