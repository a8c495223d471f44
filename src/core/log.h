// Minimal leveled logging to stderr: LogInfo("loaded ", n, " tensors"). Thread-safe (one write).
#pragma once

#include <sstream>
#include <string>

namespace petrel {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void LogLine(LogLevel level, const std::string& msg);

template <typename... Args>
void Log(LogLevel level, Args&&... args) {
  if (level < GetLogLevel()) return;
  std::ostringstream os;
  (os << ... << args);
  LogLine(level, os.str());
}
template <typename... Args>
void LogInfo(Args&&... a) { Log(LogLevel::kInfo, std::forward<Args>(a)...); }
template <typename... Args>
void LogWarn(Args&&... a) { Log(LogLevel::kWarn, std::forward<Args>(a)...); }
template <typename... Args>
void LogError(Args&&... a) { Log(LogLevel::kError, std::forward<Args>(a)...); }
template <typename... Args>
void LogDebug(Args&&... a) { Log(LogLevel::kDebug, std::forward<Args>(a)...); }

}  // namespace petrel
