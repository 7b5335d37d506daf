//! Docker's error responses: a status code and `{"message": "..."}`.

/// An error as the Engine API returns it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    /// 400: the request is malformed or asks for something unsupported.
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(400, m)
    }
    /// 404: no such object.
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(404, m)
    }
    /// 403: not allowed on this object (predefined networks, existing endpoints).
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(403, m)
    }
    /// 409: conflicts with the object's state.
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(409, m)
    }
    /// 500: the engine failed.
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(500, m)
    }
    /// 304: nothing to do (already started / stopped).
    pub fn not_modified() -> Self {
        Self::new(304, "")
    }
    /// 404 for a container, with Docker's wording.
    pub fn no_such_container(id: &str) -> Self {
        Self::not_found(format!("No such container: {id}"))
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        serde_json::json!({ "message": self.message }).to_string()
    }
}
