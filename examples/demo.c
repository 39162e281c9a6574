#include <stdio.h>
#include "mlc.h"
int
main(void)
{
	printf("mlc %s\n", mlc_version_string());
	return 0;
}
