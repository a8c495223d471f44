// Declarative command-line flags for the `petrel` subcommands. Each command builds a Flags table,
// then Parse() fills the bound variables and collects positional arguments. Unknown flags, missing
// values and bad numbers are errors that name the flag.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"

namespace petrel::cli {

class Flags {
 public:
  explicit Flags(std::string usage) : usage_(std::move(usage)) {}

  // Binds --name VALUE (or --name=VALUE) to a variable.
  Flags& Add(std::string name, std::string* out, std::string help);
  Flags& Add(std::string name, int64_t* out, std::string help);
  Flags& Add(std::string name, int* out, std::string help);
  Flags& Add(std::string name, double* out, std::string help);
  Flags& Add(std::string name, float* out, std::string help);
  // A repeatable --name VALUE; each occurrence is appended.
  Flags& Add(std::string name, std::vector<std::string>* out, std::string help);
  // A boolean switch --name (no value).
  Flags& AddSwitch(std::string name, bool* out, std::string help);

  // Parses argv[first..argc). Positional arguments go to positional(). `--help` sets help().
  Status Parse(int argc, char** argv, int first = 2);
  const std::vector<std::string>& positional() const { return positional_; }
  bool help() const { return help_; }
  // Whether --name appeared on the command line.
  bool Seen(const std::string& name) const;
  std::string Usage() const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    bool is_switch = false;
    std::function<Status(const std::string&)> set;
  };
  std::string usage_;
  std::vector<Flag> flags_;
  std::vector<std::string> positional_;
  std::vector<std::string> seen_;
  bool help_ = false;
};

// Parses "1,2,3" into ids; errors name the bad element.
Result<std::vector<int32_t>> ParseIdList(const std::string& s);

}  // namespace petrel::cli
