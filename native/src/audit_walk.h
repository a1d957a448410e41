// The audit verify walk's fast path; see audit_walk.cc.
#pragma once

#include <napi.h>

Napi::Value AuditWalkJs(const Napi::CallbackInfo& info);
