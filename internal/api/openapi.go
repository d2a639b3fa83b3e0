package api

import _ "embed"

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the API: the reference of its
// routes, bodies and errors (openapi_test.go checks the server against it).
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }
