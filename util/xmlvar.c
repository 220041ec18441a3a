/*
 * xmlvar.c - libxml2's variables for programs that link libxml2 (see
 * xmlvar.h). Alone in its object file: the docket binary defines both
 * functions itself, so this member of libdocket.a is never linked there.
 */
#include "util/xmlvar.h"

#include <libxml/globals.h>
#include <libxml/parserInternals.h>

void dk_xml_free(void *p)
{
	if (p)
		xmlFree(p);
}

unsigned dk_xml_max_depth(void)
{
	return xmlParserMaxDepth;
}
