// The `petrel` subcommands. Each lives in its own cmd_<name>.cc and is listed in main.cc's table.
// A command gets the full argv (argv[1] is its name) and returns the process exit code.
#pragma once

namespace petrel::cli {

int RunGenerate(int argc, char** argv);
int RunChat(int argc, char** argv);
int RunKv(int argc, char** argv);
int RunLogits(int argc, char** argv);
int RunInspect(int argc, char** argv);
int RunBench(int argc, char** argv);
int RunTemplate(int argc, char** argv);
int RunTokenize(int argc, char** argv);
int RunDetokenize(int argc, char** argv);
int RunServe(int argc, char** argv);
int RunQuantize(int argc, char** argv);
int RunPerplexity(int argc, char** argv);
int RunConvert(int argc, char** argv);
int RunMerge(int argc, char** argv);
int RunConvertAdapter(int argc, char** argv);
int RunCompare(int argc, char** argv);
int RunBenchLora(int argc, char** argv);

}  // namespace petrel::cli
