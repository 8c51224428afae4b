// preload/: the interposition layer. It adapts symbols and nothing more:
// each exported function forwards to pool/.
#pragma once
#include "../pool/pool.hpp"

#define RINGPOOL_EXPORT extern "C" __attribute__((visibility("default")))
#define RINGPOOL_EXPORT_CXX __attribute__((visibility("default")))
