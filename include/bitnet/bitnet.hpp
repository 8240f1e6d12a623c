// The public API in one include.
#pragma once

#include "bitnet/batch.hpp"
#include "bitnet/convert.hpp"
#include "bitnet/error.hpp"
#include "bitnet/generate.hpp"
#include "bitnet/gguf.hpp"
#include "bitnet/model.hpp"
#include "bitnet/output_file.hpp"
#include "bitnet/sampling.hpp"
#include "bitnet/session.hpp"
#include "bitnet/stats.hpp"
#include "bitnet/system.hpp"
#include "bitnet/tokenizer.hpp"
#include "bitnet/utf8.hpp"
