// Placeholder so the library exists before the repository implementation
// lands; replaced by the real sources.
#include "backup/repository.h"
