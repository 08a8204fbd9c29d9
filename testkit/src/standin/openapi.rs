//! The Kubernetes 1.36 OpenAPI v2 document the stand-in serves at `/openapi/v2`, embedded
//! gzipped from `data/kubernetes/` and inflated once on first use.

use std::io::Read;
use std::sync::OnceLock;

use bytes::Bytes;

const OPENAPI_V2_GZ: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/kubernetes/openapi-v2-1.36.json.gz"
));

/// The document's JSON bytes.
pub fn openapi_v2() -> Bytes {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            let mut json = Vec::with_capacity(4 << 20);
            flate2::read::GzDecoder::new(OPENAPI_V2_GZ)
                .read_to_end(&mut json)
                .expect("the embedded OpenAPI document is valid gzip");
            Bytes::from(json)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_document_is_the_kubernetes_spec() {
        let doc: serde_json::Value = serde_json::from_slice(&super::openapi_v2()).unwrap();
        assert_eq!(doc["swagger"], "2.0");
        assert!(doc["paths"]["/api/v1/namespaces/{namespace}/pods"].is_object());
        assert_eq!(doc["info"]["title"], "Kubernetes");
    }
}
