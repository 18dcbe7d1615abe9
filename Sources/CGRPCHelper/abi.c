/* The C ABI's declarations (include/grpchelper.h) for the Swift targets: the
 * functions are implemented in Swift (GRPCHelperC, `@c @implementation`), which
 * the compiler checks against these declarations. Nothing is compiled here. */
#include "grpchelper.h"
