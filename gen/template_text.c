/* Lookup of an embedded template by file name (see templates.h). */
#include <string.h>

#include "templates.h"

const char *template_text(const char *name)
{
    for (int i = 0; i < stepfuse_template_count; i++)
        if (!strcmp(stepfuse_templates[i].name, name)) return stepfuse_templates[i].text;
    return NULL;
}
