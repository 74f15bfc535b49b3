#include "common/json.h"

namespace vireo {

Result<Json> ParseJson(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return Err(ErrorCode::kInvalidArgument, "malformed JSON");
  return j;
}

}  // namespace vireo
