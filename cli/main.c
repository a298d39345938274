#include <ocicache/ocicache.h>

int main(void)
{
	return 0;
}
