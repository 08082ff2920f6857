// corpus.hpp: a small deterministic byte corpus for training tests.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <hyena/tensor/random.hpp>

namespace hyena::testing {

// Sentences drawn from a tiny grammar: learnable structure, not a single repeated string.
inline std::vector<std::int32_t> toy_corpus(std::size_t bytes, std::uint64_t seed = 7) {
  const char* subjects[] = {"the cat", "a dog", "my friend", "the old man", "a small bird"};
  const char* verbs[] = {" sees ", " likes ", " finds ", " follows ", " hears "};
  const char* objects[] = {"the moon.", "a red ball.", "the river.", "some bread.", "the tall tree."};
  rng r(seed);
  std::string text;
  while (text.size() < bytes) {
    text += subjects[r.below(5)];
    text += verbs[r.below(5)];
    text += objects[r.below(5)];
    text += r.below(4) == 0 ? "\n" : " ";
  }
  text.resize(bytes);
  return std::vector<std::int32_t>(text.begin(), text.end());
}

}  // namespace hyena::testing
