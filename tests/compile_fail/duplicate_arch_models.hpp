// A registration that reuses a built-in architecture name (see duplicate_arch.cpp).
#pragma once
namespace hyena::cli {
using user_models = model_list<named_model<"llama", models::hyena_student<llama>>>;
}  // namespace hyena::cli
