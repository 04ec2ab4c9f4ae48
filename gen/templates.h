/* The CUDA templates (the .cu files in templates/), embedded at build time (build/templates.c is made
 * from them by the Makefile), so the binary works from any directory. */
#ifndef STEPFUSE_TEMPLATES_H
#define STEPFUSE_TEMPLATES_H

typedef struct {
    const char *name; /* file name, e.g. "common.cu" */
    const char *text;
} template_file_t;

extern const template_file_t stepfuse_templates[];
extern const int stepfuse_template_count;

/* The text of templates/<name> ("unfused.cu"), or NULL when no such template is embedded. */
const char *template_text(const char *name);

#endif
