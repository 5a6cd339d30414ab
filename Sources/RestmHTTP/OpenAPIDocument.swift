/// The OpenAPI 3.1 description of the HTTP API (API.md and docs/API-EXTENSIONS.md), served at
/// `GET /openapi.json`. Kept by hand, and kept true by `Tests/api/test_openapi.py`: its route
/// table (RestmResponder's routes) must equal the documented operations, every operation is
/// exercised and its answers validated against this, and schemathesis fuzzes a live node
/// with it. A route added, removed or changed is changed here too.
enum OpenAPIDocument {
    static let json = #"""
    {
      "openapi": "3.1.0",
      "info": {
        "title": "reSTM",
        "version": "1",
        "summary": "A transactional memory server: pointers to JSON values, serializable transactions, tasks.",
        "description": "The HTTP API of API.md (version 1) and docs/API-EXTENSIONS.md. JSON in and out unless a browser asks for HTML. Every response carries `Restm-Ts` (and echoes `X-Request-Id`); every error is `{\"error\", \"message\", \"retryable\"}`. A path that no route serves answers 404 `no_such_route`, a method a path does not serve 405 `method_not_allowed`; while the node shuts down, everything but `/sys/*` and `/metrics` answers 503 `shutting_down`. Operations marked `x-restm-destructive` stop the node; `x-restm-long-poll` ones wait up to their `timeoutMs`; `x-restm-streaming` ones do not end."
      },
      "tags": [
        {
          "name": "pointers",
          "description": "Pointers without a transaction (each request is its own) or in one (`?txn=`)"
        },
        {
          "name": "transactions",
          "description": "Serializable transactions"
        },
        {
          "name": "watching",
          "description": "Long-polls and event streams"
        },
        {
          "name": "tasks",
          "description": "Tasks and their workers"
        },
        {
          "name": "demo",
          "description": "The distributed sort demo"
        },
        {
          "name": "system",
          "description": "Health, figures, lifecycle"
        },
        {
          "name": "explorer",
          "description": "The memory explorer (HTML)"
        }
      ],
      "paths": {
        "/": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "get": {
            "tags": [
              "explorer"
            ],
            "operationId": "explorer",
            "summary": "The memory explorer (HTML)",
            "description": "Lists pointers by prefix and the open transactions.",
            "parameters": [
              {
                "name": "prefix",
                "in": "query",
                "required": false,
                "schema": {
                  "type": "string"
                }
              },
              {
                "name": "after",
                "in": "query",
                "required": false,
                "schema": {
                  "type": "string"
                }
              }
            ],
            "responses": {
              "200": {
                "description": "The explorer page",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "text/html": {
                    "schema": {
                      "type": "string"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          },
          "head": {
            "tags": [
              "explorer"
            ],
            "operationId": "explorerHead",
            "summary": "Like GET, without a body",
            "description": "Answers the status and headers the GET would, without a body.",
            "responses": {
              "200": {
                "description": "The explorer page",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequestHead"
              },
              "503": {
                "$ref": "#/components/responses/UnavailableHead"
              }
            },
            "parameters": [
              {
                "name": "prefix",
                "in": "query",
                "required": false,
                "schema": {
                  "type": "string"
                }
              },
              {
                "name": "after",
                "in": "query",
                "required": false,
                "schema": {
                  "type": "string"
                }
              }
            ]
          }
        },
        "/ptr": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "post": {
            "tags": [
              "pointers"
            ],
            "operationId": "allocatePointer",
            "summary": "Allocate a new pointer",
            "description": "Creates a pointer with a fresh unique id holding the body (JSON null without one), as its own transaction or inside `?txn=`.",
            "parameters": [
              {
                "$ref": "#/components/parameters/TxnQuery"
              }
            ],
            "requestBody": {
              "required": false,
              "content": {
                "application/json": {
                  "schema": {
                    "$ref": "#/components/schemas/Value"
                  },
                  "example": {
                    "hello": "world"
                  }
                }
              },
              "description": "The initial value"
            },
            "responses": {
              "201": {
                "description": "Allocated",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Allocated"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "404": {
                "$ref": "#/components/responses/NotFound"
              },
              "409": {
                "$ref": "#/components/responses/Conflict"
              },
              "413": {
                "$ref": "#/components/responses/TooLarge"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          }
        },
        "/ptr/{p}": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            },
            {
              "$ref": "#/components/parameters/Ptr"
            }
          ],
          "get": {
            "tags": [
              "pointers"
            ],
            "operationId": "getPointer",
            "summary": "Read a pointer",
            "description": "Without `txn`: the current value (or as of `at`) with `ETag`, 404 `not_found` if absent. With `txn`: the transaction's snapshot plus its own writes; an absent pointer reads `value` and `version` null (200). A browser (`Accept: text/html`) gets the explorer page of the pointer.",
            "parameters": [
              {
                "$ref": "#/components/parameters/TxnQuery"
              },
              {
                "name": "at",
                "in": "query",
                "required": false,
                "schema": {
                  "type": "string"
                },
                "description": "A version or an ISO-8601 instant inside the retention window (older: 410 `pruned`; later than now or unparsable: 400 `bad_timestamp`). Ignored with `txn`."
              }
            ],
            "responses": {
              "200": {
                "description": "The value",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  },
                  "ETag": {
                    "$ref": "#/components/headers/ETagOptional"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/PointerValue"
                    }
                  },
                  "text/html": {
                    "schema": {
                      "type": "string"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "404": {
                "$ref": "#/components/responses/NotFound"
              },
              "409": {
                "$ref": "#/components/responses/Conflict"
              },
              "410": {
                "$ref": "#/components/responses/Pruned"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          },
          "head": {
            "tags": [
              "pointers"
            ],
            "operationId": "headPointer",
            "summary": "Like GET, without a body",
            "description": "Answers the status and headers the GET would, without a body.",
            "responses": {
              "200": {
                "description": "The value",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  },
                  "ETag": {
                    "$ref": "#/components/headers/ETagOptional"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequestHead"
              },
              "404": {
                "$ref": "#/components/responses/NotFoundHead"
              },
              "409": {
                "$ref": "#/components/responses/ConflictHead"
              },
              "410": {
                "$ref": "#/components/responses/PrunedHead"
              },
              "503": {
                "$ref": "#/components/responses/UnavailableHead"
              }
            },
            "parameters": [
              {
                "$ref": "#/components/parameters/TxnQuery"
              },
              {
                "name": "at",
                "in": "query",
                "required": false,
                "schema": {
                  "type": "string"
                },
                "description": "A version or an ISO-8601 instant inside the retention window (older: 410 `pruned`; later than now or unparsable: 400 `bad_timestamp`). Ignored with `txn`."
              }
            ]
          },
          "put": {
            "tags": [
              "pointers"
            ],
            "operationId": "putPointer",
            "summary": "Write a pointer",
            "description": "Without `txn`: writes the value as its own transaction (conflicts are retried inside the node; 409 only past its deadline) and answers the new version with `ETag`. With `If-Match`, only if that is still the current version (else 412; a tag the server never issued never matches). With `txn`: buffers the write until commit (204).",
            "parameters": [
              {
                "$ref": "#/components/parameters/TxnQuery"
              },
              {
                "$ref": "#/components/parameters/IfMatch"
              }
            ],
            "requestBody": {
              "required": true,
              "content": {
                "application/json": {
                  "schema": {
                    "$ref": "#/components/schemas/Value"
                  },
                  "example": {
                    "n": 1
                  }
                }
              },
              "description": "The new value (at most 1 MiB as compact JSON)"
            },
            "responses": {
              "200": {
                "description": "Written",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  },
                  "ETag": {
                    "$ref": "#/components/headers/ETag"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/PointerVersion"
                    }
                  }
                }
              },
              "204": {
                "description": "Buffered in the transaction",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "404": {
                "$ref": "#/components/responses/NotFound"
              },
              "409": {
                "$ref": "#/components/responses/Conflict"
              },
              "412": {
                "$ref": "#/components/responses/PreconditionFailed"
              },
              "413": {
                "$ref": "#/components/responses/TooLarge"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          },
          "delete": {
            "tags": [
              "pointers"
            ],
            "operationId": "deletePointer",
            "summary": "Delete a pointer",
            "description": "As its own transaction (200 with the version of the delete; with `If-Match`, only if that still holds, else 412) or buffered in `txn` (204).",
            "parameters": [
              {
                "$ref": "#/components/parameters/TxnQuery"
              },
              {
                "$ref": "#/components/parameters/IfMatch"
              }
            ],
            "responses": {
              "200": {
                "description": "Deleted",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/PointerVersion"
                    }
                  }
                }
              },
              "204": {
                "description": "Buffered in the transaction",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "404": {
                "$ref": "#/components/responses/NotFound"
              },
              "409": {
                "$ref": "#/components/responses/Conflict"
              },
              "412": {
                "$ref": "#/components/responses/PreconditionFailed"
              },
              "413": {
                "$ref": "#/components/responses/TooLarge"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          }
        },
        "/ptr/{p}/history": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            },
            {
              "$ref": "#/components/parameters/Ptr"
            }
          ],
          "get": {
            "tags": [
              "pointers"
            ],
            "operationId": "pointerHistory",
            "summary": "Versions of a pointer, newest first",
            "description": "A delete appears with `\"value\": null, \"deleted\": true`. Versions older than the newest one before the GC cut are gone once version GC has run.",
            "parameters": [
              {
                "$ref": "#/components/parameters/Limit"
              },
              {
                "name": "before",
                "in": "query",
                "required": false,
                "schema": {
                  "type": "string"
                },
                "description": "Only versions strictly older than this version or ISO-8601 instant (older than the retention window: 410 `pruned`)."
              }
            ],
            "responses": {
              "200": {
                "description": "The versions",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/History"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "410": {
                "$ref": "#/components/responses/Pruned"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          },
          "head": {
            "tags": [
              "pointers"
            ],
            "operationId": "pointerHistoryHead",
            "summary": "Like GET, without a body",
            "description": "Answers the status and headers the GET would, without a body.",
            "parameters": [
              {
                "$ref": "#/components/parameters/Limit"
              },
              {
                "name": "before",
                "in": "query",
                "required": false,
                "schema": {
                  "type": "string"
                },
                "description": "Only versions strictly older than this version or ISO-8601 instant (older than the retention window: 410 `pruned`)."
              }
            ],
            "responses": {
              "200": {
                "description": "The versions",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequestHead"
              },
              "410": {
                "$ref": "#/components/responses/PrunedHead"
              },
              "503": {
                "$ref": "#/components/responses/UnavailableHead"
              }
            }
          }
        },
        "/ptrs": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "get": {
            "tags": [
              "pointers"
            ],
            "operationId": "listPointers",
            "summary": "List pointer ids",
            "description": "A listing for browsing, not a transactional (predicate) read.",
            "parameters": [
              {
                "name": "prefix",
                "in": "query",
                "required": false,
                "schema": {
                  "type": "string",
                  "pattern": "^[A-Za-z0-9._:~-]{0,256}$"
                }
              },
              {
                "name": "after",
                "in": "query",
                "required": false,
                "schema": {
                  "$ref": "#/components/schemas/PointerId"
                }
              },
              {
                "$ref": "#/components/parameters/Limit"
              }
            ],
            "responses": {
              "200": {
                "description": "A page of ids",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/PointerPage"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          },
          "head": {
            "tags": [
              "pointers"
            ],
            "operationId": "listPointersHead",
            "summary": "Like GET, without a body",
            "description": "Answers the status and headers the GET would, without a body.",
            "parameters": [
              {
                "name": "prefix",
                "in": "query",
                "required": false,
                "schema": {
                  "type": "string",
                  "pattern": "^[A-Za-z0-9._:~-]{0,256}$"
                }
              },
              {
                "name": "after",
                "in": "query",
                "required": false,
                "schema": {
                  "$ref": "#/components/schemas/PointerId"
                }
              },
              {
                "$ref": "#/components/parameters/Limit"
              }
            ],
            "responses": {
              "200": {
                "description": "A page of ids",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequestHead"
              },
              "503": {
                "$ref": "#/components/responses/UnavailableHead"
              }
            }
          }
        },
        "/batch": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "post": {
            "tags": [
              "transactions"
            ],
            "operationId": "batch",
            "summary": "Many independent requests in one",
            "description": "Extension (docs/API-EXTENSIONS.md). Each item is served exactly as the same request alone would be (same checks, same answer), concurrently with the others: nothing is ordered between items and each succeeds or fails on its own. At most 1,000 items; `/batch`, `/watch`, `/events`, `/task/result/…` and `/sys/…` cannot be items (400). A malformed batch is refused whole (400) and runs nothing. An item's `body` is its JSON answer, or a JSON string for an answer that is not JSON.",
            "requestBody": {
              "required": true,
              "content": {
                "application/json": {
                  "schema": {
                    "$ref": "#/components/schemas/BatchRequest"
                  },
                  "example": {
                    "requests": [
                      {
                        "method": "POST",
                        "path": "/txn/begin",
                        "body": {
                          "reads": [
                            "acct:1"
                          ]
                        }
                      },
                      {
                        "method": "GET",
                        "path": "/ptr/acct:2"
                      }
                    ]
                  }
                }
              }
            },
            "responses": {
              "200": {
                "description": "Every item's answer, in the order of the requests",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/BatchResponse"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "413": {
                "$ref": "#/components/responses/TooLarge"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          }
        },
        "/txn": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "post": {
            "tags": [
              "transactions"
            ],
            "operationId": "oneShot",
            "summary": "A one-shot transaction",
            "description": "Reads, expectations, writes and deletes in one transaction, retried inside the node on conflicts. 412 `expectation_failed` with `current` when an expected version differs.",
            "requestBody": {
              "required": false,
              "content": {
                "application/json": {
                  "schema": {
                    "$ref": "#/components/schemas/OneShotRequest"
                  },
                  "example": {
                    "reads": [
                      "doc.a"
                    ],
                    "expect": {
                      "doc.b": null
                    },
                    "writes": {
                      "doc.b": 1
                    },
                    "deletes": []
                  }
                }
              }
            },
            "responses": {
              "200": {
                "description": "Committed",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/OneShot"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "409": {
                "$ref": "#/components/responses/Conflict"
              },
              "412": {
                "$ref": "#/components/responses/PreconditionFailed"
              },
              "413": {
                "$ref": "#/components/responses/TooLarge"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          }
        },
        "/txn/begin": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "post": {
            "tags": [
              "transactions"
            ],
            "operationId": "begin",
            "summary": "Begin a transaction",
            "requestBody": {
              "required": false,
              "content": {
                "application/json": {
                  "schema": {
                    "$ref": "#/components/schemas/BeginRequest"
                  },
                  "example": {
                    "readOnly": false,
                    "timeoutMs": 5000,
                    "reads": [
                      "doc.a"
                    ]
                  }
                }
              }
            },
            "responses": {
              "201": {
                "description": "Begun",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Begun"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "409": {
                "$ref": "#/components/responses/Conflict"
              },
              "413": {
                "$ref": "#/components/responses/TooLarge"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          }
        },
        "/txn/{t}": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "get": {
            "tags": [
              "transactions"
            ],
            "operationId": "txnStatus",
            "summary": "Status of a transaction",
            "description": "A browser (`Accept: text/html`) gets the explorer page.",
            "parameters": [
              {
                "$ref": "#/components/parameters/Txn"
              }
            ],
            "responses": {
              "200": {
                "description": "The status",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/TxnStatus"
                    }
                  },
                  "text/html": {
                    "schema": {
                      "type": "string"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "404": {
                "$ref": "#/components/responses/NotFound"
              },
              "405": {
                "$ref": "#/components/responses/MethodNotAllowed"
              },
              "410": {
                "$ref": "#/components/responses/Pruned"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          },
          "head": {
            "tags": [
              "transactions"
            ],
            "operationId": "txnStatusHead",
            "summary": "Like GET, without a body",
            "description": "Answers the status and headers the GET would, without a body.",
            "parameters": [
              {
                "$ref": "#/components/parameters/Txn"
              }
            ],
            "responses": {
              "200": {
                "description": "The status",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequestHead"
              },
              "404": {
                "$ref": "#/components/responses/NotFoundHead"
              },
              "405": {
                "$ref": "#/components/responses/MethodNotAllowedHead"
              },
              "410": {
                "$ref": "#/components/responses/PrunedHead"
              },
              "503": {
                "$ref": "#/components/responses/UnavailableHead"
              }
            }
          }
        },
        "/txn/{t}/read": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "post": {
            "tags": [
              "transactions"
            ],
            "operationId": "batchRead",
            "summary": "Read many pointers in a transaction",
            "parameters": [
              {
                "$ref": "#/components/parameters/Txn"
              }
            ],
            "requestBody": {
              "required": true,
              "content": {
                "application/json": {
                  "schema": {
                    "$ref": "#/components/schemas/BatchReadRequest"
                  },
                  "example": {
                    "ptrs": [
                      "doc.a",
                      "doc.b"
                    ]
                  }
                }
              }
            },
            "responses": {
              "200": {
                "description": "The values",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/BatchRead"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "404": {
                "$ref": "#/components/responses/NotFound"
              },
              "409": {
                "$ref": "#/components/responses/Conflict"
              },
              "413": {
                "$ref": "#/components/responses/TooLarge"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          }
        },
        "/txn/{t}/commit": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "post": {
            "tags": [
              "transactions"
            ],
            "operationId": "commit",
            "summary": "Commit a transaction",
            "description": "With the writes and deletes of the body added to the buffered ones. Idempotent: committing a committed transaction again answers the same 200. 409 `conflict` aborts the transaction; committing an aborted one is 409 `txn_not_active`. 503 `outcome_unknown`: ask `GET /txn/{t}`.",
            "parameters": [
              {
                "$ref": "#/components/parameters/Txn"
              }
            ],
            "requestBody": {
              "required": false,
              "content": {
                "application/json": {
                  "schema": {
                    "$ref": "#/components/schemas/CommitRequest"
                  },
                  "example": {
                    "writes": {
                      "doc.a": 2
                    },
                    "deletes": []
                  }
                }
              }
            },
            "responses": {
              "200": {
                "description": "Committed",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Committed"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "404": {
                "$ref": "#/components/responses/NotFound"
              },
              "409": {
                "$ref": "#/components/responses/Conflict"
              },
              "413": {
                "$ref": "#/components/responses/TooLarge"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          }
        },
        "/txn/{t}/abort": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "post": {
            "tags": [
              "transactions"
            ],
            "operationId": "abort",
            "summary": "Abort a transaction",
            "description": "Aborting a finished transaction is 409 `txn_not_active`. A body is read (at most 8 MiB) and ignored.",
            "parameters": [
              {
                "$ref": "#/components/parameters/Txn"
              }
            ],
            "requestBody": {
              "required": false,
              "content": {
                "application/json": {
                  "schema": {
                    "$ref": "#/components/schemas/Value"
                  }
                }
              },
              "description": "Ignored"
            },
            "responses": {
              "200": {
                "description": "Aborted",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Aborted"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "404": {
                "$ref": "#/components/responses/NotFound"
              },
              "409": {
                "$ref": "#/components/responses/Conflict"
              },
              "413": {
                "$ref": "#/components/responses/TooLarge"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          }
        },
        "/watch": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "post": {
            "tags": [
              "watching"
            ],
            "operationId": "watch",
            "summary": "Long-poll for changes",
            "description": "Answers as soon as some pointer's current version differs from the one given, or with `{\"changed\": {}}` at the timeout.",
            "x-restm-long-poll": true,
            "requestBody": {
              "required": true,
              "content": {
                "application/json": {
                  "schema": {
                    "$ref": "#/components/schemas/WatchRequest"
                  },
                  "example": {
                    "ptrs": {
                      "doc.a": null
                    },
                    "timeoutMs": 100
                  }
                }
              }
            },
            "responses": {
              "200": {
                "description": "What changed",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Watched"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "413": {
                "$ref": "#/components/responses/TooLarge"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          }
        },
        "/events": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "get": {
            "tags": [
              "watching"
            ],
            "operationId": "events",
            "summary": "Server-sent events of changes",
            "description": "One `event: change` per committed change of the named pointers (`id:` the version, `data:` `{\"ptr\",\"value\",\"version\"}`; a delete has `\"value\": null, \"version\": null` and its version as `id:`), in commit order for each pointer; a pointer named twice is watched once; a comment line every 15 s keeps the stream alive; it ends when the node shuts down or the client leaves. 503 before the stream starts when the node has no room for another watcher. A reconnecting client's `Last-Event-ID` (the `id:` of the last event it had) gets the changes committed since first, in commit order, as far as history holds them.",
            "x-restm-streaming": true,
            "parameters": [
              {
                "name": "Last-Event-ID",
                "in": "header",
                "required": false,
                "description": "The version of the last event a reconnecting client had; anything else is ignored.",
                "schema": {
                  "type": "string"
                }
              },
              {
                "name": "ptr",
                "in": "query",
                "required": true,
                "style": "form",
                "explode": true,
                "schema": {
                  "type": "array",
                  "items": {
                    "$ref": "#/components/schemas/PointerId"
                  },
                  "minItems": 1,
                  "maxItems": 1000
                },
                "example": [
                  "doc.a"
                ]
              }
            ],
            "responses": {
              "200": {
                "description": "The event stream",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "text/event-stream": {
                    "schema": {
                      "type": "string"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "413": {
                "$ref": "#/components/responses/TooLarge"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          }
        },
        "/task": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "post": {
            "tags": [
              "tasks"
            ],
            "operationId": "submitTask",
            "summary": "Submit a task",
            "description": "400 `unknown_kind` for a kind no node registered; 503 `overloaded` when the ready queue is full.",
            "requestBody": {
              "required": true,
              "content": {
                "application/json": {
                  "schema": {
                    "$ref": "#/components/schemas/TaskSubmit"
                  },
                  "example": {
                    "kind": "demo.sum",
                    "input": {
                      "from": 0,
                      "to": 10
                    }
                  }
                }
              }
            },
            "responses": {
              "201": {
                "description": "Created",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/TaskCreated"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "413": {
                "$ref": "#/components/responses/TooLarge"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          }
        },
        "/task/info/{id}": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            },
            {
              "$ref": "#/components/parameters/TaskPath"
            }
          ],
          "get": {
            "tags": [
              "tasks"
            ],
            "operationId": "taskInfo",
            "summary": "A task's status and progress",
            "description": "Progress is counted over the whole tree below the task. A browser gets an HTML page.",
            "responses": {
              "200": {
                "description": "The task",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/TaskInfo"
                    }
                  },
                  "text/html": {
                    "schema": {
                      "type": "string"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "404": {
                "$ref": "#/components/responses/NotFound"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          },
          "head": {
            "tags": [
              "tasks"
            ],
            "operationId": "taskInfoHead",
            "summary": "Like GET, without a body",
            "description": "Answers the status and headers the GET would, without a body.",
            "responses": {
              "200": {
                "description": "The task",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequestHead"
              },
              "404": {
                "$ref": "#/components/responses/NotFoundHead"
              },
              "503": {
                "$ref": "#/components/responses/UnavailableHead"
              }
            }
          }
        },
        "/task/result/{id}": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            },
            {
              "$ref": "#/components/parameters/TaskPath"
            }
          ],
          "get": {
            "tags": [
              "tasks"
            ],
            "operationId": "taskResult",
            "summary": "Wait for a task's result",
            "description": "Blocks until the task is done (200) or `timeoutMs` passes (202 with the task's info).",
            "x-restm-long-poll": true,
            "parameters": [
              {
                "name": "timeoutMs",
                "in": "query",
                "required": false,
                "description": "Default 30,000; capped at 60,000.",
                "schema": {
                  "type": "integer",
                  "minimum": 0,
                  "maximum": 9223372036854775807
                },
                "example": 100
              }
            ],
            "responses": {
              "200": {
                "description": "Finished",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/TaskResult"
                    }
                  }
                }
              },
              "202": {
                "description": "Still running at the timeout",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/TaskInfo"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "404": {
                "$ref": "#/components/responses/NotFound"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          },
          "head": {
            "tags": [
              "tasks"
            ],
            "operationId": "taskResultHead",
            "summary": "Like GET, without a body",
            "description": "Answers the status and headers the GET would, without a body.",
            "responses": {
              "200": {
                "description": "Finished",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "202": {
                "description": "Still running at the timeout",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequestHead"
              },
              "404": {
                "$ref": "#/components/responses/NotFoundHead"
              },
              "503": {
                "$ref": "#/components/responses/UnavailableHead"
              }
            },
            "parameters": [
              {
                "name": "timeoutMs",
                "in": "query",
                "required": false,
                "description": "Default 30,000; capped at 60,000.",
                "schema": {
                  "type": "integer",
                  "minimum": 0,
                  "maximum": 9223372036854775807
                },
                "example": 100
              }
            ],
            "x-restm-long-poll": true
          }
        },
        "/demo/sort": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "get": {
            "tags": [
              "demo"
            ],
            "operationId": "startSort",
            "summary": "Start a distributed sort of N random strings",
            "description": "A browser gets an HTML page linking the result.",
            "parameters": [
              {
                "name": "n",
                "in": "query",
                "required": false,
                "description": "Default 10,000",
                "schema": {
                  "type": "integer",
                  "minimum": 1,
                  "maximum": 10000000
                },
                "example": 100
              },
              {
                "name": "seed",
                "in": "query",
                "required": false,
                "description": "The same seed gives the same strings (default random).",
                "schema": {
                  "type": "integer",
                  "minimum": 0,
                  "maximum": 9223372036854775807
                }
              }
            ],
            "responses": {
              "202": {
                "description": "Started",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/TaskCreated"
                    }
                  },
                  "text/html": {
                    "schema": {
                      "type": "string"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          },
          "post": {
            "tags": [
              "demo"
            ],
            "operationId": "sortStrings",
            "summary": "Sort the given strings",
            "description": "Sorted ascending by Unicode code points.",
            "requestBody": {
              "required": true,
              "content": {
                "application/json": {
                  "schema": {
                    "type": "array",
                    "items": {
                      "type": "string"
                    },
                    "maxItems": 10000000
                  },
                  "example": [
                    "pear",
                    "apple",
                    "fig"
                  ]
                }
              }
            },
            "responses": {
              "202": {
                "description": "Started",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/TaskCreated"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "413": {
                "$ref": "#/components/responses/TooLarge"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          }
        },
        "/demo/sort/result/{task}": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "get": {
            "tags": [
              "demo"
            ],
            "operationId": "sortResult",
            "summary": "A page of a finished sort",
            "description": "202 with the task's info while it runs; 409 `task_failed` if it failed; 404 for an unknown task or one that is not a `demo.sort`.",
            "parameters": [
              {
                "name": "task",
                "in": "path",
                "required": true,
                "schema": {
                  "$ref": "#/components/schemas/TaskId"
                },
                "example": "kaaaaaaaaaaaaaaaaaaaaaaaaaa"
              },
              {
                "name": "offset",
                "in": "query",
                "required": false,
                "schema": {
                  "type": "integer",
                  "minimum": 0,
                  "maximum": 9223372036854775807
                }
              },
              {
                "name": "limit",
                "in": "query",
                "required": false,
                "description": "Default 100, at most 1,000",
                "schema": {
                  "type": "integer",
                  "minimum": 1,
                  "maximum": 9223372036854775807
                }
              }
            ],
            "responses": {
              "200": {
                "description": "The page",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/SortPage"
                    }
                  }
                }
              },
              "202": {
                "description": "Still running",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/TaskInfo"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "404": {
                "$ref": "#/components/responses/NotFound"
              },
              "409": {
                "$ref": "#/components/responses/Conflict"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          },
          "head": {
            "tags": [
              "demo"
            ],
            "operationId": "sortResultHead",
            "summary": "Like GET, without a body",
            "description": "Answers the status and headers the GET would, without a body.",
            "responses": {
              "200": {
                "description": "The page",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "202": {
                "description": "Still running",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequestHead"
              },
              "404": {
                "$ref": "#/components/responses/NotFoundHead"
              },
              "409": {
                "$ref": "#/components/responses/ConflictHead"
              },
              "503": {
                "$ref": "#/components/responses/UnavailableHead"
              }
            },
            "parameters": [
              {
                "name": "task",
                "in": "path",
                "required": true,
                "schema": {
                  "$ref": "#/components/schemas/TaskId"
                },
                "example": "kaaaaaaaaaaaaaaaaaaaaaaaaaa"
              },
              {
                "name": "offset",
                "in": "query",
                "required": false,
                "schema": {
                  "type": "integer",
                  "minimum": 0,
                  "maximum": 9223372036854775807
                }
              },
              {
                "name": "limit",
                "in": "query",
                "required": false,
                "description": "Default 100, at most 1,000",
                "schema": {
                  "type": "integer",
                  "minimum": 1,
                  "maximum": 9223372036854775807
                }
              }
            ]
          }
        },
        "/sys/health": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "get": {
            "tags": [
              "system"
            ],
            "operationId": "health",
            "summary": "Health",
            "responses": {
              "200": {
                "description": "Running",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Health"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "503": {
                "description": "Shutting down, or failing: the store has stopped until the node restarts",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/HealthDown"
                    }
                  }
                }
              }
            }
          },
          "head": {
            "tags": [
              "system"
            ],
            "operationId": "healthHead",
            "summary": "Like GET, without a body",
            "description": "Answers the status and headers the GET would, without a body.",
            "responses": {
              "200": {
                "description": "Running",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequestHead"
              },
              "503": {
                "description": "Shutting down",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              }
            }
          }
        },
        "/sys/info": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "get": {
            "tags": [
              "system"
            ],
            "operationId": "info",
            "summary": "About this node",
            "responses": {
              "200": {
                "description": "The node",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/SysInfo"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              }
            }
          },
          "head": {
            "tags": [
              "system"
            ],
            "operationId": "infoHead",
            "summary": "Like GET, without a body",
            "description": "Answers the status and headers the GET would, without a body.",
            "responses": {
              "200": {
                "description": "The node",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequestHead"
              }
            }
          }
        },
        "/sys/metrics": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "get": {
            "tags": [
              "system"
            ],
            "operationId": "metrics",
            "summary": "Figures of this node",
            "description": "`avgTime` and `totalTime` in milliseconds. A browser gets an HTML page.",
            "responses": {
              "200": {
                "description": "The figures",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Metrics"
                    }
                  },
                  "text/html": {
                    "schema": {
                      "type": "string"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              }
            }
          },
          "head": {
            "tags": [
              "system"
            ],
            "operationId": "metricsHead",
            "summary": "Like GET, without a body",
            "description": "Answers the status and headers the GET would, without a body.",
            "responses": {
              "200": {
                "description": "The figures",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequestHead"
              }
            }
          }
        },
        "/sys/init": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "post": {
            "tags": [
              "system"
            ],
            "operationId": "init",
            "summary": "Start the task workers",
            "description": "Idempotent: starts the task workers if none run (two per core), and answers how many run. A body is ignored.",
            "responses": {
              "200": {
                "description": "Workers running",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Init"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              }
            }
          },
          "get": {
            "tags": [
              "system"
            ],
            "operationId": "initGet",
            "summary": "Start the task workers (GET also accepted)",
            "description": "Idempotent: starts the task workers if none run (two per core), and answers how many run. A body is ignored.",
            "responses": {
              "200": {
                "description": "Workers running",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Init"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              }
            }
          }
        },
        "/sys/shutdown": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "post": {
            "tags": [
              "system"
            ],
            "operationId": "shutdown",
            "summary": "Graceful shutdown",
            "description": "Answers 202, then new transactions and tasks get 503, commits already sent finish, transactions that have not sent their commit are aborted, everything is durable, and the process exits with code 0 within 10 s. A body is ignored.",
            "x-restm-destructive": true,
            "responses": {
              "202": {
                "description": "Shutting down",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/ShuttingDown"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              }
            }
          },
          "get": {
            "tags": [
              "system"
            ],
            "operationId": "shutdownGet",
            "summary": "Graceful shutdown (GET also accepted)",
            "description": "Answers 202, then new transactions and tasks get 503, commits already sent finish, transactions that have not sent their commit are aborted, everything is durable, and the process exits with code 0 within 10 s. A body is ignored.",
            "x-restm-destructive": true,
            "responses": {
              "202": {
                "description": "Shutting down",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/ShuttingDown"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              }
            }
          }
        },
        "/sys/cluster": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "get": {
            "tags": [
              "system"
            ],
            "operationId": "cluster",
            "summary": "Members, health and shard owners",
            "responses": {
              "200": {
                "description": "The cluster",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Cluster"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              }
            }
          },
          "head": {
            "tags": [
              "system"
            ],
            "operationId": "clusterHead",
            "summary": "Like GET, without a body",
            "description": "Answers the status and headers the GET would, without a body.",
            "responses": {
              "200": {
                "description": "The cluster",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequestHead"
              }
            }
          }
        },
        "/sys/logs": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "get": {
            "tags": [
              "system"
            ],
            "operationId": "logs",
            "summary": "Recent activity log entries",
            "parameters": [
              {
                "$ref": "#/components/parameters/Limit"
              }
            ],
            "responses": {
              "200": {
                "description": "Entries, newest first",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/Logs"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              }
            }
          },
          "head": {
            "tags": [
              "system"
            ],
            "operationId": "logsHead",
            "summary": "Like GET, without a body",
            "description": "Answers the status and headers the GET would, without a body.",
            "responses": {
              "200": {
                "description": "Entries, newest first",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequestHead"
              }
            },
            "parameters": [
              {
                "$ref": "#/components/parameters/Limit"
              }
            ]
          }
        },
        "/metrics": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "get": {
            "tags": [
              "system"
            ],
            "operationId": "prometheus",
            "summary": "Figures in Prometheus text format",
            "responses": {
              "200": {
                "description": "Prometheus text format 0.0.4",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "text/plain": {
                    "schema": {
                      "type": "string"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              }
            }
          },
          "head": {
            "tags": [
              "system"
            ],
            "operationId": "prometheusHead",
            "summary": "Like GET, without a body",
            "description": "Answers the status and headers the GET would, without a body.",
            "responses": {
              "200": {
                "description": "Prometheus text format 0.0.4",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequestHead"
              }
            }
          }
        },
        "/openapi.json": {
          "parameters": [
            {
              "$ref": "#/components/parameters/RestmAfter"
            },
            {
              "$ref": "#/components/parameters/XRequestId"
            }
          ],
          "get": {
            "tags": [
              "system"
            ],
            "operationId": "openapi",
            "summary": "This document",
            "responses": {
              "200": {
                "description": "OpenAPI 3.1",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                },
                "content": {
                  "application/json": {
                    "schema": {
                      "$ref": "#/components/schemas/OpenAPI"
                    }
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequest"
              },
              "503": {
                "$ref": "#/components/responses/Unavailable"
              }
            }
          },
          "head": {
            "tags": [
              "system"
            ],
            "operationId": "openapiHead",
            "summary": "Like GET, without a body",
            "description": "Answers the status and headers the GET would, without a body.",
            "responses": {
              "200": {
                "description": "OpenAPI 3.1",
                "headers": {
                  "Restm-Ts": {
                    "$ref": "#/components/headers/Restm-Ts"
                  },
                  "X-Request-Id": {
                    "$ref": "#/components/headers/X-Request-Id"
                  }
                }
              },
              "400": {
                "$ref": "#/components/responses/BadRequestHead"
              },
              "503": {
                "$ref": "#/components/responses/UnavailableHead"
              }
            }
          }
        }
      },
      "components": {
        "schemas": {
          "Error": {
            "type": "object",
            "description": "Every error of API.md. `retryable: true` means running the whole transaction again may succeed. Some errors carry more members (`current` of 412).",
            "required": [
              "error",
              "message",
              "retryable"
            ],
            "properties": {
              "error": {
                "type": "string",
                "description": "Machine-readable code, e.g. `bad_pointer`, `not_found`, `txn_not_found`, `conflict`, `txn_not_active`, `precondition_failed`, `too_large`."
              },
              "message": {
                "type": "string",
                "description": "Text for a person."
              },
              "retryable": {
                "type": "boolean"
              }
            },
            "additionalProperties": true
          },
          "PreconditionFailed": {
            "description": "412 of `PUT /ptr/{p}` with `If-Match` (`current`: the current version, null if absent) or of `POST /txn` (`current`: pointer id to current version, for every expectation that failed).",
            "allOf": [
              {
                "$ref": "#/components/schemas/Error"
              },
              {
                "type": "object",
                "required": [
                  "current"
                ],
                "properties": {
                  "error": {
                    "enum": [
                      "precondition_failed",
                      "expectation_failed"
                    ]
                  },
                  "current": {
                    "anyOf": [
                      {
                        "type": [
                          "string",
                          "null"
                        ]
                      },
                      {
                        "type": "object",
                        "propertyNames": {
                          "$ref": "#/components/schemas/PointerId"
                        },
                        "additionalProperties": {
                          "type": [
                            "string",
                            "null"
                          ]
                        }
                      }
                    ]
                  }
                }
              }
            ]
          },
          "PointerId": {
            "type": "string",
            "pattern": "^[A-Za-z0-9._:~-]{1,256}$",
            "description": "1–256 bytes of `[A-Za-z0-9._:~-]`."
          },
          "TxnId": {
            "type": "string",
            "description": "A transaction id issued by the server (`[A-Za-z0-9._~-]`)."
          },
          "TaskId": {
            "type": "string",
            "description": "A task id issued by the server."
          },
          "Version": {
            "type": "string",
            "description": "An opaque version or timestamp issued by the server; compare only for equality and pass back as given."
          },
          "NullableVersion": {
            "type": [
              "string",
              "null"
            ],
            "description": "A version, or null for a pointer that does not exist (or an own uncommitted write)."
          },
          "Value": {
            "description": "Any JSON document (object, array, string, number, boolean or null)."
          },
          "PointerIdList": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/PointerId"
            }
          },
          "WriteMap": {
            "type": "object",
            "description": "Pointer id to its new value.",
            "propertyNames": {
              "$ref": "#/components/schemas/PointerId"
            },
            "additionalProperties": {
              "$ref": "#/components/schemas/Value"
            }
          },
          "ReadResult": {
            "type": "object",
            "required": [
              "value",
              "version"
            ],
            "properties": {
              "value": {
                "$ref": "#/components/schemas/Value"
              },
              "version": {
                "$ref": "#/components/schemas/NullableVersion"
              }
            }
          },
          "ReadResults": {
            "type": "object",
            "description": "Pointer id to its value and version.",
            "propertyNames": {
              "$ref": "#/components/schemas/PointerId"
            },
            "additionalProperties": {
              "$ref": "#/components/schemas/ReadResult"
            }
          },
          "PointerValue": {
            "type": "object",
            "required": [
              "ptr",
              "value",
              "version"
            ],
            "properties": {
              "ptr": {
                "$ref": "#/components/schemas/PointerId"
              },
              "value": {
                "$ref": "#/components/schemas/Value"
              },
              "version": {
                "$ref": "#/components/schemas/NullableVersion"
              }
            }
          },
          "PointerVersion": {
            "type": "object",
            "required": [
              "ptr",
              "version"
            ],
            "properties": {
              "ptr": {
                "$ref": "#/components/schemas/PointerId"
              },
              "version": {
                "$ref": "#/components/schemas/Version"
              }
            }
          },
          "Allocated": {
            "type": "object",
            "required": [
              "ptr"
            ],
            "properties": {
              "ptr": {
                "$ref": "#/components/schemas/PointerId"
              }
            }
          },
          "History": {
            "type": "object",
            "required": [
              "ptr",
              "versions"
            ],
            "properties": {
              "ptr": {
                "$ref": "#/components/schemas/PointerId"
              },
              "versions": {
                "type": "array",
                "description": "Newest first.",
                "items": {
                  "type": "object",
                  "required": [
                    "version",
                    "txn",
                    "value"
                  ],
                  "properties": {
                    "version": {
                      "$ref": "#/components/schemas/Version"
                    },
                    "txn": {
                      "type": "string"
                    },
                    "value": {
                      "$ref": "#/components/schemas/Value"
                    },
                    "deleted": {
                      "const": true,
                      "description": "Present on a delete (whose value is null)."
                    }
                  }
                }
              },
              "next": {
                "description": "Extension: the `before` of the next page; null when the history has no more versions. A page holds fewer than `limit` versions when their values would pass answerBytesMax.",
                "anyOf": [
                  {
                    "$ref": "#/components/schemas/Version"
                  },
                  {
                    "type": "null"
                  }
                ]
              }
            }
          },
          "PointerPage": {
            "type": "object",
            "required": [
              "ptrs",
              "next"
            ],
            "properties": {
              "ptrs": {
                "$ref": "#/components/schemas/PointerIdList"
              },
              "next": {
                "anyOf": [
                  {
                    "$ref": "#/components/schemas/PointerId"
                  },
                  {
                    "type": "null"
                  }
                ],
                "description": "Pass as `after` for the next page; null on the last one."
              }
            }
          },
          "BeginRequest": {
            "type": "object",
            "properties": {
              "readOnly": {
                "type": [
                  "boolean",
                  "null"
                ]
              },
              "timeoutMs": {
                "type": [
                  "integer",
                  "null"
                ],
                "minimum": 1,
                "maximum": 300000,
                "description": "Idle time allowed between requests (default 30,000)."
              },
              "priority": {
                "type": [
                  "string",
                  "null"
                ],
                "description": "The `ts` of a first attempt, passed by a retry; must be a version issued by the server (else 400 `bad_timestamp`)."
              },
              "reads": {
                "type": [
                  "array",
                  "null"
                ],
                "items": {
                  "$ref": "#/components/schemas/PointerId"
                },
                "maxItems": 1000,
                "description": "Extension: read these at the new snapshot; answered as `values`."
              }
            }
          },
          "Begun": {
            "type": "object",
            "required": [
              "txn",
              "ts"
            ],
            "properties": {
              "txn": {
                "$ref": "#/components/schemas/TxnId"
              },
              "ts": {
                "$ref": "#/components/schemas/Version"
              },
              "values": {
                "$ref": "#/components/schemas/ReadResults"
              }
            }
          },
          "TxnStatus": {
            "type": "object",
            "required": [
              "txn",
              "ts",
              "status",
              "reads",
              "writes"
            ],
            "properties": {
              "txn": {
                "$ref": "#/components/schemas/TxnId"
              },
              "ts": {
                "type": [
                  "string",
                  "null"
                ],
                "description": "The snapshot (active), the commit timestamp (committed), null for an aborted transaction this node no longer remembers."
              },
              "status": {
                "enum": [
                  "active",
                  "committed",
                  "aborted"
                ]
              },
              "reads": {
                "type": "integer",
                "minimum": 0
              },
              "writes": {
                "type": "integer",
                "minimum": 0
              },
              "reason": {
                "type": "string",
                "description": "Why an aborted transaction was aborted."
              },
              "phase": {
                "enum": [
                  "committing",
                  "outcome_unknown"
                ],
                "description": "While `active`: a commit is in flight or its outcome is being settled."
              }
            }
          },
          "BatchReadRequest": {
            "type": "object",
            "required": [
              "ptrs"
            ],
            "properties": {
              "ptrs": {
                "type": "array",
                "items": {
                  "$ref": "#/components/schemas/PointerId"
                },
                "maxItems": 1000
              }
            }
          },
          "BatchRead": {
            "type": "object",
            "required": [
              "values"
            ],
            "properties": {
              "values": {
                "$ref": "#/components/schemas/ReadResults"
              }
            }
          },
          "CommitRequest": {
            "type": "object",
            "properties": {
              "writes": {
                "anyOf": [
                  {
                    "$ref": "#/components/schemas/WriteMap"
                  },
                  {
                    "type": "null"
                  }
                ]
              },
              "deletes": {
                "anyOf": [
                  {
                    "$ref": "#/components/schemas/PointerIdList"
                  },
                  {
                    "type": "null"
                  }
                ]
              }
            }
          },
          "Committed": {
            "type": "object",
            "required": [
              "txn",
              "status",
              "ts"
            ],
            "properties": {
              "txn": {
                "$ref": "#/components/schemas/TxnId"
              },
              "status": {
                "const": "committed"
              },
              "ts": {
                "$ref": "#/components/schemas/Version"
              }
            }
          },
          "Aborted": {
            "type": "object",
            "required": [
              "txn",
              "status"
            ],
            "properties": {
              "txn": {
                "$ref": "#/components/schemas/TxnId"
              },
              "status": {
                "const": "aborted"
              }
            }
          },
          "OneShotRequest": {
            "type": "object",
            "properties": {
              "reads": {
                "anyOf": [
                  {
                    "$ref": "#/components/schemas/PointerIdList"
                  },
                  {
                    "type": "null"
                  }
                ]
              },
              "expect": {
                "anyOf": [
                  {
                    "type": "object",
                    "propertyNames": {
                      "$ref": "#/components/schemas/PointerId"
                    },
                    "additionalProperties": {
                      "type": [
                        "string",
                        "null"
                      ]
                    },
                    "description": "Pointer id to the version it must still have, null for absent."
                  },
                  {
                    "type": "null"
                  }
                ]
              },
              "writes": {
                "anyOf": [
                  {
                    "$ref": "#/components/schemas/WriteMap"
                  },
                  {
                    "type": "null"
                  }
                ]
              },
              "deletes": {
                "anyOf": [
                  {
                    "$ref": "#/components/schemas/PointerIdList"
                  },
                  {
                    "type": "null"
                  }
                ]
              },
              "txn": {
                "anyOf": [
                  {
                    "type": "string",
                    "pattern": "^c[A-Za-z0-9_-]{16,64}$",
                    "description": "Extension: a client-chosen id. GET /txn/{id} then tells this transaction's fate (an id asked about before its request arrives is fenced for the record retention, one hour: the request is refused with 409 txn_not_active), and a second request with the same id answers the first outcome instead of running again."
                  },
                  {
                    "type": "null"
                  }
                ]
              }
            }
          },
          "OneShot": {
            "type": "object",
            "required": [
              "status",
              "ts",
              "values"
            ],
            "properties": {
              "status": {
                "const": "committed"
              },
              "ts": {
                "$ref": "#/components/schemas/Version"
              },
              "values": {
                "$ref": "#/components/schemas/ReadResults"
              },
              "txn": {
                "type": "string",
                "description": "The client-chosen id, when one was given."
              },
              "attempts": {
                "type": "integer",
                "minimum": 2,
                "description": "How many times the node ran the transaction, when it retried conflicts itself before it committed (absent when it ran once)."
              }
            }
          },
          "BatchRequest": {
            "type": "object",
            "required": [
              "requests"
            ],
            "properties": {
              "requests": {
                "type": "array",
                "maxItems": 1000,
                "items": {
                  "type": "object",
                  "required": [
                    "method",
                    "path"
                  ],
                  "properties": {
                    "method": {
                      "type": "string",
                      "description": "An HTTP method, e.g. POST"
                    },
                    "path": {
                      "type": "string",
                      "pattern": "^/",
                      "description": "Path and query, as in a request line"
                    },
                    "body": {
                      "description": "The item's JSON body, if any"
                    }
                  }
                }
              }
            }
          },
          "BatchResponse": {
            "type": "object",
            "required": [
              "responses"
            ],
            "properties": {
              "responses": {
                "type": "array",
                "items": {
                  "type": "object",
                  "required": [
                    "status"
                  ],
                  "properties": {
                    "status": {
                      "type": "integer",
                      "description": "The HTTP status the item would have had alone"
                    },
                    "body": {
                      "description": "The item's answer: JSON, or a JSON string for an answer that is not JSON"
                    }
                  }
                }
              }
            }
          },
          "WatchRequest": {
            "type": "object",
            "required": [
              "ptrs"
            ],
            "properties": {
              "ptrs": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 10000,
                "propertyNames": {
                  "$ref": "#/components/schemas/PointerId"
                },
                "additionalProperties": {
                  "type": [
                    "string",
                    "null"
                  ]
                },
                "description": "Pointer id to the version the client has (null: absent). A version the server never issued counts as different. At least one pointer, at most `watchPointersMax` (10,000, as many as a transaction may touch)."
              },
              "values": {
                "type": [
                  "boolean",
                  "null"
                ],
                "description": "Extension: false answers each changed pointer's version only (`{\"version\"}`), for a client that only needs to know. Default true: the values, bounded like a read's (413 past `answerBytesMax`)."
              },
              "timeoutMs": {
                "type": [
                  "integer",
                  "null"
                ],
                "minimum": 0,
                "maximum": 9223372036854775807,
                "description": "Default 30,000; capped at 60,000."
              }
            }
          },
          "Watched": {
            "type": "object",
            "required": [
              "changed"
            ],
            "properties": {
              "changed": {
                "anyOf": [
                  {
                    "$ref": "#/components/schemas/ReadResults"
                  },
                  {
                    "type": "object",
                    "description": "With `\"values\": false`: pointer id to its current version only.",
                    "propertyNames": {
                      "$ref": "#/components/schemas/PointerId"
                    },
                    "additionalProperties": {
                      "type": "object",
                      "required": [
                        "version"
                      ],
                      "additionalProperties": false,
                      "properties": {
                        "version": {
                          "$ref": "#/components/schemas/NullableVersion"
                        }
                      }
                    }
                  }
                ]
              }
            }
          },
          "TaskSubmit": {
            "type": "object",
            "required": [
              "kind"
            ],
            "properties": {
              "kind": {
                "type": "string",
                "description": "A registered kind: `demo.sort`, `sort.range`, `demo.sum`."
              },
              "input": {
                "$ref": "#/components/schemas/Value"
              }
            }
          },
          "TaskCreated": {
            "type": "object",
            "required": [
              "task"
            ],
            "properties": {
              "task": {
                "$ref": "#/components/schemas/TaskId"
              }
            }
          },
          "TaskInfo": {
            "type": "object",
            "required": [
              "task",
              "kind",
              "status",
              "phase",
              "parent",
              "children",
              "progress",
              "attempts",
              "created",
              "updated"
            ],
            "properties": {
              "task": {
                "$ref": "#/components/schemas/TaskId"
              },
              "kind": {
                "type": "string"
              },
              "status": {
                "enum": [
                  "queued",
                  "running",
                  "waiting",
                  "done",
                  "failed"
                ]
              },
              "phase": {
                "enum": [
                  "run",
                  "reduce"
                ]
              },
              "parent": {
                "type": [
                  "string",
                  "null"
                ]
              },
              "children": {
                "type": "array",
                "items": {
                  "$ref": "#/components/schemas/TaskId"
                }
              },
              "progress": {
                "type": "object",
                "required": [
                  "done",
                  "total",
                  "complete"
                ],
                "properties": {
                  "done": {
                    "type": "integer",
                    "minimum": 0
                  },
                  "total": {
                    "type": "integer",
                    "minimum": 1
                  },
                  "complete": {
                    "type": "boolean",
                    "description": "false if the tree was cut at 5,000 tasks"
                  }
                }
              },
              "attempts": {
                "type": "integer",
                "minimum": 0
              },
              "created": {
                "type": "integer",
                "description": "Unix ms"
              },
              "updated": {
                "type": "integer",
                "description": "Unix ms"
              },
              "error": {
                "type": "string",
                "description": "The last failure"
              }
            }
          },
          "TaskResult": {
            "oneOf": [
              {
                "type": "object",
                "required": [
                  "status",
                  "result"
                ],
                "properties": {
                  "status": {
                    "const": "done"
                  },
                  "result": {
                    "$ref": "#/components/schemas/Value"
                  }
                }
              },
              {
                "type": "object",
                "required": [
                  "status",
                  "error"
                ],
                "properties": {
                  "status": {
                    "const": "failed"
                  },
                  "error": {
                    "type": "string"
                  }
                }
              }
            ]
          },
          "SortPage": {
            "type": "object",
            "required": [
              "total",
              "items"
            ],
            "properties": {
              "total": {
                "type": "integer",
                "minimum": 0
              },
              "items": {
                "type": "array",
                "items": {
                  "type": "string"
                }
              }
            }
          },
          "Health": {
            "type": "object",
            "required": [
              "status"
            ],
            "properties": {
              "status": {
                "const": "ok"
              }
            }
          },
          "HealthDown": {
            "allOf": [
              {
                "$ref": "#/components/schemas/Error"
              },
              {
                "type": "object",
                "required": [
                  "status"
                ],
                "properties": {
                  "status": {
                    "enum": [
                      "shutting_down",
                      "failing"
                    ]
                  },
                  "error": {
                    "enum": [
                      "shutting_down",
                      "store_failure"
                    ]
                  }
                }
              }
            ]
          },
          "SysInfo": {
            "type": "object",
            "required": [
              "node",
              "version",
              "incarnation",
              "store",
              "location",
              "durability",
              "shards",
              "uptimeMs",
              "clock",
              "ceiling",
              "state",
              "limits"
            ],
            "properties": {
              "node": {
                "type": "integer"
              },
              "version": {
                "type": "string"
              },
              "incarnation": {
                "type": "integer"
              },
              "store": {
                "type": "string"
              },
              "location": {
                "type": "string"
              },
              "durability": {
                "enum": [
                  "sync",
                  "async"
                ]
              },
              "shards": {
                "type": "integer",
                "minimum": 1
              },
              "uptimeMs": {
                "type": "integer",
                "minimum": 0
              },
              "clock": {
                "$ref": "#/components/schemas/Version"
              },
              "ceiling": {
                "$ref": "#/components/schemas/Version"
              },
              "state": {
                "type": "string",
                "description": "`running` until a shutdown starts"
              },
              "limits": {
                "type": "object",
                "additionalProperties": {
                  "type": "integer"
                },
                "required": [
                  "valueBytesMax",
                  "requestBytesMax",
                  "pointersPerTxnMax",
                  "answerBytesMax",
                  "batchAnswerBytesMax",
                  "answerBytesInFlightMax",
                  "txnIdleTimeoutMs",
                  "txnLifetimeMs",
                  "openTxnsMax",
                  "intentLeaseMs",
                  "retentionMs"
                ]
              }
            }
          },
          "OperationStats": {
            "type": "object",
            "required": [
              "success",
              "failed",
              "invocations",
              "avgTime",
              "totalTime"
            ],
            "properties": {
              "success": {
                "type": "integer",
                "minimum": 0
              },
              "failed": {
                "type": "integer",
                "minimum": 0
              },
              "invocations": {
                "type": "integer",
                "minimum": 0
              },
              "avgTime": {
                "type": "number",
                "minimum": 0,
                "description": "ms"
              },
              "totalTime": {
                "type": "number",
                "minimum": 0,
                "description": "ms"
              }
            }
          },
          "Metrics": {
            "type": "object",
            "required": [
              "code",
              "scalars",
              "txns"
            ],
            "properties": {
              "code": {
                "type": "object",
                "description": "component → operation → figures",
                "additionalProperties": {
                  "type": "object",
                  "additionalProperties": {
                    "$ref": "#/components/schemas/OperationStats"
                  }
                }
              },
              "scalars": {
                "type": "object",
                "required": [
                  "openTxns",
                  "inflightCommits",
                  "commitQueueDepth",
                  "pointersInMemory",
                  "valueBytesInMemory",
                  "timestampCacheEntries",
                  "intents",
                  "waiters",
                  "groupCommitBatches",
                  "groupCommitAvgSize",
                  "uptimeMs",
                  "gcPasses",
                  "gcVersionsPruned",
                  "gcRecordsPruned",
                  "gcCut",
                  "workers",
                  "taskStepsRunning",
                  "answerBytesInFlight"
                ],
                "properties": {
                  "groupCommitAvgSize": {
                    "type": "number"
                  },
                  "gcCut": {
                    "$ref": "#/components/schemas/Version"
                  }
                },
                "additionalProperties": {
                  "type": "integer"
                }
              },
              "txns": {
                "type": "object",
                "required": [
                  "begun",
                  "committed",
                  "committedReadOnly",
                  "conflicted",
                  "aborted",
                  "timedOut",
                  "conflicts"
                ],
                "properties": {
                  "conflicts": {
                    "type": "object",
                    "additionalProperties": {
                      "type": "integer"
                    }
                  }
                },
                "additionalProperties": {
                  "type": "integer"
                }
              }
            }
          },
          "Init": {
            "type": "object",
            "required": [
              "status",
              "workers"
            ],
            "properties": {
              "status": {
                "const": "ok"
              },
              "workers": {
                "type": "integer",
                "minimum": 0
              }
            }
          },
          "ShuttingDown": {
            "type": "object",
            "required": [
              "status"
            ],
            "properties": {
              "status": {
                "const": "shutting_down"
              }
            }
          },
          "Cluster": {
            "type": "object",
            "required": [
              "members",
              "shardCount",
              "owners"
            ],
            "properties": {
              "members": {
                "type": "array",
                "items": {
                  "type": "object",
                  "required": [
                    "id",
                    "self",
                    "health"
                  ],
                  "properties": {
                    "id": {
                      "type": "integer"
                    },
                    "self": {
                      "type": "boolean"
                    },
                    "health": {
                      "enum": [
                        "ok",
                        "shutting_down",
                        "failing"
                      ]
                    }
                  }
                }
              },
              "shardCount": {
                "type": "integer",
                "minimum": 1
              },
              "owners": {
                "type": "object",
                "description": "node id → the shards it owns",
                "additionalProperties": {
                  "type": "array",
                  "items": {
                    "type": "integer",
                    "minimum": 0
                  }
                }
              }
            }
          },
          "Logs": {
            "type": "object",
            "required": [
              "entries"
            ],
            "properties": {
              "entries": {
                "type": "array",
                "description": "Newest first.",
                "items": {
                  "type": "object",
                  "required": [
                    "time",
                    "message"
                  ],
                  "properties": {
                    "time": {
                      "type": "string",
                      "format": "date-time"
                    },
                    "message": {
                      "type": "string"
                    }
                  }
                }
              }
            }
          },
          "OpenAPI": {
            "type": "object",
            "required": [
              "openapi",
              "info",
              "paths"
            ],
            "properties": {
              "openapi": {
                "type": "string"
              }
            }
          }
        },
        "responses": {
          "BadRequest": {
            "description": "Bad input: `bad_pointer`, `bad_json`, `bad_request`, `bad_timestamp` (also a `Restm-After` token too far ahead), `unknown_kind`.",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "NotFound": {
            "description": "`not_found` (pointer or task), `txn_not_found`.",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "Conflict": {
            "description": "`conflict` (retryable: the transaction is aborted), `txn_not_active`, `task_failed`.",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "Pruned": {
            "description": "`pruned`: older than the retention window.",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "PreconditionFailed": {
            "description": "`precondition_failed` (`If-Match`) or `expectation_failed` (`expect`), with `current`.",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/PreconditionFailed"
                }
              }
            }
          },
          "TooLarge": {
            "description": "`too_large`: a body, value or list over its limit.",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "MethodNotAllowed": {
            "description": "`method_not_allowed`: `GET /txn/begin` is this path with `t` = `begin`, which only POST serves.",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "Unavailable": {
            "description": "`shutting_down` or `overloaded` (retryable), `outcome_unknown` (a commit may or may not have happened: ask `GET /txn/{t}`), `store_failure`.",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "BadRequestHead": {
            "description": "Bad input: `bad_pointer`, `bad_json`, `bad_request`, `bad_timestamp` (also a `Restm-After` token too far ahead), `unknown_kind`. (HEAD: no body)",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            }
          },
          "NotFoundHead": {
            "description": "`not_found` (pointer or task), `txn_not_found`. (HEAD: no body)",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            }
          },
          "ConflictHead": {
            "description": "`conflict` (retryable: the transaction is aborted), `txn_not_active`, `task_failed`. (HEAD: no body)",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            }
          },
          "PrunedHead": {
            "description": "`pruned`: older than the retention window. (HEAD: no body)",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            }
          },
          "PreconditionFailedHead": {
            "description": "`precondition_failed` (`If-Match`) or `expectation_failed` (`expect`), with `current`. (HEAD: no body)",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            }
          },
          "TooLargeHead": {
            "description": "`too_large`: a body, value or list over its limit. (HEAD: no body)",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            }
          },
          "MethodNotAllowedHead": {
            "description": "`method_not_allowed`: `GET /txn/begin` is this path with `t` = `begin`, which only POST serves. (HEAD: no body)",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            }
          },
          "UnavailableHead": {
            "description": "`shutting_down` or `overloaded` (retryable), `outcome_unknown` (a commit may or may not have happened: ask `GET /txn/{t}`), `store_failure`. (HEAD: no body)",
            "headers": {
              "Restm-Ts": {
                "$ref": "#/components/headers/Restm-Ts"
              },
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            }
          }
        },
        "parameters": {
          "RestmAfter": {
            "name": "Restm-After",
            "in": "header",
            "required": false,
            "description": "The latest `Restm-Ts` the client saw: the answer reflects everything that request did. A token not from `Restm-Ts`, or too far ahead of the node clock, is 400 `bad_timestamp`.",
            "schema": {
              "type": "string"
            }
          },
          "XRequestId": {
            "name": "X-Request-Id",
            "in": "header",
            "required": false,
            "description": "Echoed in the answer, and named in the node's log lines of the request.",
            "schema": {
              "type": "string"
            }
          },
          "Ptr": {
            "name": "p",
            "in": "path",
            "required": true,
            "description": "Pointer id (percent-encoded segments are decoded).",
            "schema": {
              "$ref": "#/components/schemas/PointerId"
            },
            "example": "doc.example"
          },
          "Txn": {
            "name": "t",
            "in": "path",
            "required": true,
            "description": "Transaction id.",
            "schema": {
              "$ref": "#/components/schemas/TxnId"
            },
            "example": "t1.1.1"
          },
          "IfMatch": {
            "name": "If-Match",
            "in": "header",
            "required": false,
            "schema": {
              "type": "string"
            },
            "description": "RFC 9110: `*` (the pointer exists) or a list of `\"<version>\"` as `ETag` gives them, compared strongly (a weak `W/` tag never matches, nor does one the server never issued). Only without `txn`: with it, 400 (inside a transaction, read the pointer or use `POST /txn`'s `expect`).",
            "example": "\"00000000000000000000\""
          },
          "TxnQuery": {
            "name": "txn",
            "in": "query",
            "required": false,
            "schema": {
              "$ref": "#/components/schemas/TxnId"
            },
            "description": "Do it inside this open transaction (404 `txn_not_found`, 409 `txn_not_active`)."
          },
          "TaskPath": {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "$ref": "#/components/schemas/TaskId"
            },
            "example": "kaaaaaaaaaaaaaaaaaaaaaaaaaa"
          },
          "Limit": {
            "name": "limit",
            "in": "query",
            "required": false,
            "description": "Page size (default 100, at most 1,000; larger is capped).",
            "schema": {
              "type": "integer",
              "minimum": 1,
              "maximum": 9223372036854775807
            }
          }
        },
        "headers": {
          "Restm-Ts": {
            "description": "The node's clock after the request; send the latest one seen as `Restm-After`.",
            "required": true,
            "schema": {
              "$ref": "#/components/schemas/Version"
            }
          },
          "X-Request-Id": {
            "description": "The request's `X-Request-Id`, if it had one.",
            "required": false,
            "schema": {
              "type": "string"
            }
          },
          "ETag": {
            "description": "`\"<version>\"`",
            "required": true,
            "schema": {
              "type": "string"
            }
          },
          "ETagOptional": {
            "description": "`\"<version>\"` of the value read (not with `txn`)",
            "required": false,
            "schema": {
              "type": "string"
            }
          }
        }
      }
    }
    """#
}
