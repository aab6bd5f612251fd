"""Access reports for auditors."""

from django.contrib.auth.decorators import login_required, permission_required
from django.http import JsonResponse

from access.models import Membership


@login_required
@permission_required("access.view_report")
def memberships_report(request):
    rows = Membership.objects.values("group__name", "user__email").order_by("group__name")
    return JsonResponse({"rows": list(rows), "count": len(rows)})


@login_required
@permission_required("access.view_report")
def group_sizes(request):
    sizes = {}
    for row in Membership.objects.values("group__name"):
        sizes[row["group__name"]] = sizes.get(row["group__name"], 0) + 1
    return JsonResponse({"sizes": sizes})
