"""Access reports for auditors."""

from django.contrib.auth.decorators import login_required, permission_required
from django.http import JsonResponse

from access.models import Membership


@login_required
@permission_required("access.view_report")
def memberships_report(request):
    rows = Membership.objects.values("group__name", "user__email")
    return JsonResponse({"rows": list(rows)})
