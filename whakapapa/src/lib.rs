//! Identity and purpose for every Kubernetes API request.
